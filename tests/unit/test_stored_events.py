"""The stored event: what a consumer announces once a message is in the store."""

import json
from datetime import timezone

from hypothesis import given
from hypothesis import strategies as st

from shared_domain.clock import utc_now
from shared_domain.failures import SourcePosition
from shared_domain.message import ClientId, Message, MessageId, MessageText
from shared_domain.stored_events import decode_stored_event, encode_stored_event
from tests.unit.strategies import VALID_CLIENT, VALID_MESSAGE_ID, VALID_TEXT

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
