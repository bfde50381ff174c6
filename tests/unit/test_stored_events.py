"""The stored event: what a consumer announces once a message is in the store."""

import json
from datetime import timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared_domain.clock import utc_now
from shared_domain.failures import SourcePosition
from shared_domain.message import ClientId, Message, MessageId, MessageText
from shared_domain.stored_events import decode_stored_event, encode_stored_event
from tests.unit.strategies import ADDED_FIELD_NAMES, JSON_DATA, VALID_CLIENT, VALID_MESSAGE_ID, VALID_TEXT

MOMENTS = st.datetimes(timezones=st.just(timezone.utc)).map(lambda moment: moment.replace(
    microsecond=moment.microsecond - moment.microsecond % 1000))


@given(VALID_MESSAGE_ID, VALID_CLIENT, VALID_CLIENT, VALID_TEXT, MOMENTS, st.integers(0, 2**31), st.integers(0, 2**62))
def test_any_stored_message_survives_its_event(message_id, sender, recipient, text, sent_at, partition, offset):
    message = Message(MessageId(message_id), ClientId(sender), ClientId(recipient), MessageText(text), sent_at)
    source = SourcePosition("client-messages", partition, offset)
    event = decode_stored_event(encode_stored_event(message, source))
    assert (event.message, event.source) == (message, source)


def test_the_event_is_compact_json_naming_the_message_and_its_source():
    message = Message(MessageId("m-1"), ClientId("clientA"), ClientId("clientB"), MessageText("hi"), utc_now())
    document = json.loads(encode_stored_event(message, SourcePosition("client-messages", 2, 17)))
    assert set(document) == {"v", "messageId", "from", "to", "message", "sentAt", "source"}
    assert document["source"] == ["client-messages", 2, 17] and document["v"] == 1


EVENT_FIELDS = {"v", "messageId", "from", "to", "message", "sentAt", "source"}
MESSAGE = Message(MessageId("m-1"), ClientId("clientA"), ClientId("clientB"), MessageText("hi"), utc_now())
SOURCE = SourcePosition("client-messages", 2, 17)


@given(st.dictionaries(ADDED_FIELD_NAMES.filter(lambda name: name not in EVENT_FIELDS), JSON_DATA, min_size=1,
                       max_size=6), st.booleans())
@settings(max_examples=200, deadline=None)
def test_an_event_from_a_newer_writer_is_read_as_the_same_event(extras, extras_first):
    today = json.loads(encode_stored_event(MESSAGE, SOURCE))
    document = {**extras, **today} if extras_first else {**today, **extras}
    assert decode_stored_event(json.dumps(document).encode()) == decode_stored_event(encode_stored_event(MESSAGE, SOURCE))


@pytest.mark.parametrize("version", [2, 0, "1", 1.0, True, None])
def test_an_event_of_another_version_is_refused(version):
    document = {**json.loads(encode_stored_event(MESSAGE, SOURCE)), "v": version}
    with pytest.raises(ValueError, match="version"):
        decode_stored_event(json.dumps(document).encode())
