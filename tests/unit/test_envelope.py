"""The Kafka wire envelope: encoding, decoding and the poison it refuses."""

import json
from datetime import datetime, timezone

import pytest

from shared_domain.envelope import SchemaViolation, UndecodableRecord, decode, encode
from shared_domain.message import Message

MESSAGE = Message("m-1", "clientA", "clientB", "héllo\nthere", datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc))


def envelope(**changes) -> bytes:
    """A valid encoded envelope with some fields changed (None removes one)."""
    document = json.loads(encode(MESSAGE))
    document.update(changes)
    return json.dumps({k: v for k, v in document.items() if v is not None}).encode()


def test_a_message_survives_encoding_and_decoding():
    assert decode(encode(MESSAGE)) == MESSAGE


def test_the_envelope_is_versioned_json_with_api_field_names():
    assert json.loads(encode(MESSAGE)) == {
        "schemaVersion": 1, "messageId": "m-1", "from": "clientA", "to": "clientB",
        "message": "héllo\nthere", "sentAt": "2026-01-02T03:04:05.678Z",
    }


@pytest.mark.parametrize("value", [None, b"\xff\xfe\x00garbage", b"not json", b"[1, 2]", b'"text"', b""])
def test_bytes_that_are_not_a_json_object_are_undecodable(value):
    with pytest.raises(UndecodableRecord):
        decode(value)


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"schemaVersion": 2}, "schemaVersion"),
        ({"schemaVersion": "1"}, "schemaVersion"),
        ({"messageId": None}, "messageId"),
        ({"sentAt": "yesterday"}, "sentAt"),
        ({"sentAt": "2026-01-02T03:04:05"}, "sentAt"),
        ({"to": 7}, "to"),
        ({"message": "x" * 5000}, "message"),
        ({"surprise": True}, "surprise"),
    ],
)
def test_json_that_breaks_the_schema_is_a_schema_violation(changes, field):
    with pytest.raises(SchemaViolation) as caught:
        decode(envelope(**changes))
    assert field in caught.value.errors


def test_a_schema_violation_remembers_a_usable_recipient():
    with pytest.raises(SchemaViolation) as caught:
        decode(envelope(message=""))
    assert caught.value.recipient_hint == "clientB"
