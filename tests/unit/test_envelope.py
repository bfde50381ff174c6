"""The Kafka wire envelope: encoding, decoding and the poison it refuses."""

import json
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from shared_domain.envelope import (ENVELOPE_FIELDS, PoisonRecord, SchemaViolation, UndecodableRecord,
                                    UnsupportedSchemaVersion, decode, encode, read_envelope)
from shared_domain.message import ClientId, Message, MessageId, MessageText
from shared_domain.schemas import SendMessageSchema
from tests.support.hostile import hostile_records
from tests.unit.strategies import ADDED_FIELD_NAMES, JSON_DATA, VALID_CLIENT, VALID_MESSAGE_ID, VALID_TEXT

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
    assert set(json.loads(encode(MESSAGE))) == ENVELOPE_FIELDS


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


MOMENTS = st.datetimes(timezones=st.just(timezone.utc)).map(lambda moment: moment.replace(
    microsecond=moment.microsecond - moment.microsecond % 1000))
MESSAGES = st.builds(lambda message_id, sender, recipient, text, sent_at: Message(
    MessageId(message_id), ClientId(sender), ClientId(recipient), MessageText(text), sent_at),
    VALID_MESSAGE_ID, VALID_CLIENT, VALID_CLIENT, VALID_TEXT, MOMENTS)
FIELD_NAMES = ADDED_FIELD_NAMES.filter(lambda name: name not in ENVELOPE_FIELDS)


def newer(message: Message, extras: dict, extras_first: bool = False) -> bytes:
    """The envelope of a newer producer: today's fields and `extras`, as JSON (lone surrogates escaped)."""
    today = json.loads(encode(message))
    document = {**extras, **today} if extras_first else {**today, **extras}
    return json.dumps(document).encode()


@given(MESSAGES, st.dictionaries(FIELD_NAMES, JSON_DATA, min_size=1, max_size=6), st.booleans())
@settings(max_examples=300, deadline=None)
def test_an_envelope_from_a_newer_producer_decodes_to_the_same_message(message, extras, extras_first):
    envelope = read_envelope(newer(message, extras, extras_first))
    assert envelope.message == decode(encode(message)) == message
    assert sorted(envelope.unknown_fields) == sorted(extras)


def test_todays_envelope_has_no_unknown_fields():
    assert read_envelope(encode(MESSAGE)).unknown_fields == ()


def test_a_newer_envelope_that_breaks_a_known_rule_is_still_a_schema_violation():
    document = {**json.loads(encode(MESSAGE)), "message": "", "priority": "high"}
    with pytest.raises(SchemaViolation) as caught:
        decode(json.dumps(document).encode())
    assert set(caught.value.errors) == {"message"}


@pytest.mark.parametrize("version", [2, 3, 10**40])
def test_a_newer_major_version_is_unsupported_whatever_its_shape_and_names_its_recipient(version):
    with pytest.raises(UnsupportedSchemaVersion) as caught:
        decode(json.dumps({"schemaVersion": version, "to": "clientB", "body": {"text": "hi"}}).encode())
    assert caught.value.recipient_hint == "clientB" and "schemaVersion" in caught.value.errors
    assert "upgraded" in str(caught.value)


@pytest.mark.parametrize("version", [0, -1, "1", "1.1", 1.0, 2.0, True, None, [1]])
def test_a_version_that_is_not_a_positive_integer_is_a_schema_violation_not_a_newer_major(version):
    with pytest.raises(SchemaViolation) as caught:
        decode(envelope(schemaVersion=version))
    assert type(caught.value) is SchemaViolation and "schemaVersion" in caught.value.errors


def test_every_hostile_record_value_still_cannot_be_stored():
    for record in hostile_records(300, seed=5):
        with pytest.raises(PoisonRecord):
            decode(record.value)


def test_the_send_api_schema_still_refuses_fields_it_does_not_know():
    with pytest.raises(ValidationError) as caught:
        SendMessageSchema().load({"to": "clientB", "message": "hi", "priority": "high"})
    assert "priority" in caught.value.normalized_messages()
