"""Live delivery's logic: positions, the hub's hand-out, and a resume that misses and repeats nothing."""

import base64
import json
from datetime import datetime, timezone
from unittest.mock import patch

import mongomock
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from producer_service.application.live import (Hub, InvalidPosition, Position, ResumeTooFar, TooManyStreams, ViewsBehind,
                                               open_stream)
from consumer_service.infrastructure.mongo_views import MongoConversationViews
from producer_service.infrastructure.mongo_readers import MongoHistory, MongoViews
from shared_domain import conversation_views
from shared_domain.documents import message_document
from shared_domain.failures import SourcePosition
from shared_domain.message import ClientId, Message, MessageId, MessageText
from shared_domain.stored_events import StoredEvent
from tests.unit.strategies import ANY_TEXT, VALID_CLIENT

NOW = datetime(2026, 5, 1, tzinfo=timezone.utc)
CLIENTS = ["clientX", "clientA", "clientB"]


def history_of(messages) -> MongoHistory:
    """The history of a mongomock messages collection, with the views beside it in the same database."""
    return MongoHistory(messages, MongoViews(messages.database.conversation_views, lambda: 3))


def concerns(message: Message, client: str) -> bool:
    """Whether a message belongs in the client's stream: sent or received by it."""
    return client in (message.sender, message.recipient)


def event(number: int, sender: str, recipient: str, offset: int) -> StoredEvent:
    """The stored event of message m-NUMBER at `offset` of its recipient's partition."""
    message = Message(MessageId(f"m-{number}"), ClientId(sender), ClientId(recipient), MessageText(f"text {number}"), NOW)
    return StoredEvent(message, SourcePosition("client-messages", CLIENTS.index(recipient), offset))


@given(st.dictionaries(VALID_CLIENT, st.integers(0, 2**63 - 1), max_size=20))
def test_a_position_survives_its_text(offsets):
    assert Position.decode(Position(offsets).encode()).offsets == offsets


@given(ANY_TEXT)
def test_any_other_text_is_an_invalid_position_or_a_valid_one(text):
    try:
        position = Position.decode(text)
    except InvalidPosition:
        return
    assert all(isinstance(offset, int) and offset >= 0 for offset in position.offsets.values())


NESTINGS = st.recursive(st.integers(0, 9) | st.text(max_size=3), lambda inner: st.lists(inner, max_size=2)
                        | st.dictionaries(VALID_CLIENT, inner, max_size=2), max_leaves=8)


@given(depth=st.integers(2, 6000), opening=st.sampled_from(["[", "{\"clientA\":"]))
def test_a_position_nested_any_depth_is_invalid_without_being_parsed(depth, opening):
    text = base64.urlsafe_b64encode((opening * depth).encode()).decode().rstrip("=")[:8192]
    with pytest.raises(InvalidPosition):
        Position.decode(text)


@given(NESTINGS.filter(lambda value: not isinstance(value, dict) or any(isinstance(v, (list, dict)) for v in value.values())))
def test_anything_but_one_flat_object_of_offsets_is_an_invalid_position(value):
    with pytest.raises(InvalidPosition):
        Position.decode(base64.urlsafe_b64encode(json.dumps(value).encode()).decode())


def stored_events(collection, events) -> None:
    """Store the events' messages and project them into the views, as the consumer and its projector do."""
    for stored_event in events:
        collection.insert_one(message_document(stored_event.message, stored_event.source, NOW))
    MongoConversationViews(collection.database).apply([(e.source.partition, e) for e in events])


def test_a_position_far_behind_is_refused_after_reading_back_no_more_than_the_limit_and_no_message():
    collection = mongomock.MongoClient(tz_aware=True)["db"].messages
    with patch.object(conversation_views, "ARRIVALS", 4):
        stored_events(collection, [event(n, "clientA", "clientB", n) for n in range(300)])
    read = {"views": [], "messages": 0}
    views, original = collection.database.conversation_views, collection.database.conversation_views.find_one
    views.find_one = lambda query, *args, **kwargs: read["views"].append(query["_id"]) or original(query, *args, **kwargs)
    collection.find_one = lambda *args, **kwargs: read.__setitem__("messages", read["messages"] + 1)
    with pytest.raises(ResumeTooFar):
        history_of(collection).missed("clientB", Position.decode("e30"), 10)
    assert read["messages"] == 0, "no message is read to find that too many were missed"
    assert len(read["views"]) <= 1 + 3 + 10 // 4 + 1, read["views"]


def test_a_resume_reads_only_by_key_and_as_many_sets_of_arrivals_as_what_was_missed_reaches_back():
    collection = mongomock.MongoClient(tz_aware=True)["db"].messages
    with patch.object(conversation_views, "ARRIVALS", 4):
        stored_events(collection, [event(n, "clientA" if n % 3 else "clientB", "clientB" if n % 3 else "clientA", n)
                            for n in range(1, 301)])
    queries = []
    for target in (collection, collection.database.conversation_views):
        original = target.find_one
        target.find_one = lambda query, *a, original=original, **k: queries.append(query) or original(query, *a, **k)
    position = Position({"clientB": 290, "clientA": 291})
    missed = history_of(collection).missed("clientB", position, 1000)
    assert sorted(e.message.message_id for e in missed) == sorted(
        f"m-{n}" for n in range(1, 301) if (n % 3 and n > 290) or (not n % 3 and n > 291))
    assert all(set(query) == {"_id"} for query in queries), "every read is a lookup by _id"
    assert len(queries) <= 1 + 3 + 2 * (10 // 4 + 2) + len(missed)


def test_the_hub_hands_an_event_to_the_sender_and_the_recipient_only():
    hub = Hub(per_client=2, capacity=10)
    subscriptions = {client: hub.subscribe(client) for client in CLIENTS}
    hub.publish([event(1, "clientA", "clientB", 0)])
    assert [client for client, subscription in subscriptions.items() if not subscription._events.empty()] == [
        "clientA", "clientB"]


@given(st.sets(st.sampled_from(CLIENTS)), st.sets(st.sampled_from(CLIENTS)),
       st.lists(st.tuples(st.sampled_from(CLIENTS), st.sampled_from(CLIENTS)), max_size=12))
def test_the_events_of_interest_are_exactly_those_some_open_stream_is_handed(subscribed, left, pairs):
    hub = Hub(per_client=2, capacity=100)
    subscriptions = {client: hub.subscribe(client) for client in subscribed}
    for client in left & subscribed:  # streams that ended: their clients are of no interest any more
        hub.unsubscribe(subscriptions.pop(client))
    events = [event(n, sender, recipient, n) for n, (sender, recipient) in enumerate(pairs)]
    handed = set()
    hub.publish(events)
    for subscription in subscriptions.values():
        while not subscription._events.empty():
            handed.add(subscription.next(0).message.message_id)
    assert [each.message.message_id for each in hub.of_interest(events)] == [
        each.message.message_id for each in events if each.message.message_id in handed]
    assert hub.empty == (not subscriptions)


def test_a_client_gets_a_bounded_number_of_streams_and_a_closed_one_frees_its_place():
    hub = Hub(per_client=1, capacity=10)
    history = history_of(mongomock.MongoClient()["db"].messages)
    stream = open_stream("clientA", None, hub, history, heartbeat_s=0.01, backfill_limit=10)
    with pytest.raises(TooManyStreams):
        open_stream("clientA", None, hub, history, heartbeat_s=0.01, backfill_limit=10)
    stream.close()
    open_stream("clientA", None, hub, history, heartbeat_s=0.01, backfill_limit=10).close()


def test_a_reader_that_falls_behind_is_cut_off_with_its_position():
    hub = Hub(per_client=1, capacity=3)
    stream = iter(open_stream("clientB", Position(), hub, history_of(mongomock.MongoClient()["db"].messages),
                              heartbeat_s=0.01, backfill_limit=10))
    start = next(stream)
    hub.publish([event(n, "clientA", "clientB", n) for n in range(10)])
    items = list(stream)
    assert [item.kind for item in items] == ["overflow"], "told it fell behind; the stream ends"
    assert items[0].position == start.position, "resuming from there, it misses nothing of what it never got"


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_a_resumed_stream_gets_every_missed_and_live_message_of_its_client_exactly_once(data):
    # Messages among three clients; each recipient's offsets grow, as in its partition.
    pairs = data.draw(st.lists(st.tuples(st.sampled_from(CLIENTS), st.sampled_from(CLIENTS)), min_size=1, max_size=25))
    next_offset, events = dict.fromkeys(CLIENTS, 0), []
    for number, (sender, recipient) in enumerate(pairs):
        next_offset[recipient] += data.draw(st.integers(1, 3))
        events.append(event(number, sender, recipient, next_offset[recipient]))
    delivered = data.draw(st.integers(0, len(events)), label="delivered before the break")
    stored = data.draw(st.integers(delivered, len(events)), label="stored when the resume reads the store")
    live_from = data.draw(st.integers(0, stored), label="first event the feed hands out after subscribing")
    repeats = data.draw(st.lists(st.integers(0, len(events) - 1), max_size=5), label="events announced again")

    position = Position()
    for earlier in events[:delivered]:
        if concerns(earlier.message, "clientX"):
            position.advance(earlier)
    collection = mongomock.MongoClient(tz_aware=True)["db"].messages
    with patch.object(conversation_views, "ARRIVALS", data.draw(st.integers(1, 5), label="arrivals per set")):
        stored_then = data.draw(st.integers(0, stored), label="stored in a first batch")
        for batch in (events[:stored_then], events[stored_then:stored]):
            stored_events(collection, batch)
    hub = Hub(per_client=1, capacity=1000)
    stream = open_stream("clientX", position, hub, history_of(collection), heartbeat_s=0.01, backfill_limit=1000)
    hub.publish(events[live_from:])
    hub.publish([events[index] for index in repeats if index < len(events)])
    hub.close()
    received = [item.event for item in stream if item.kind == "message"]

    expected = [later for later in events[delivered:] if concerns(later.message, "clientX")]
    assert sorted(e.message.message_id for e in received) == sorted(e.message.message_id for e in expected)
    for recipient in CLIENTS:  # each recipient's messages in the order they were stored
        assert [e for e in received if e.message.recipient == recipient] == [
            e for e in expected if e.message.recipient == recipient]


@pytest.mark.parametrize("views_apply_it", [True, False])
def test_a_stream_waits_for_the_views_to_read_as_far_as_the_live_feed_had_when_it_subscribed(views_apply_it):
    collection = mongomock.MongoClient(tz_aware=True)["db"].messages
    views = MongoConversationViews(collection.database)
    hub, earlier, read = Hub(per_client=1, capacity=100), event(0, "clientB", "clientX", 4), event(1, "clientA", "clientX", 5)
    stored_events(collection, [earlier])
    views.mark_read({2: 1})  # the views read record 0 of stored-events partition 2: `earlier`
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds
        if views_apply_it and now[0] >= 1.0:  # the projector's delay
            stored_events(collection, [read])
            views.mark_read({2: 2})

    def opened():
        # The feed had read record 1 (`read`) before the stream subscribed: it reaches the stream through the views.
        return open_stream("clientX", Position(), hub, history_of(collection), heartbeat_s=0.01, backfill_limit=1000,
                           feed_read=lambda: {2: 2}, catch_up_s=5.0, clock=lambda: now[0], sleep=sleep)

    if not views_apply_it:
        with pytest.raises(ViewsBehind):
            opened()
        assert 5.0 <= now[0] < 5.2, "it waited its whole bound, and no longer"
        return
    stream = opened()
    hub.close()
    assert [item.event.message.message_id for item in stream if item.kind == "message"] == ["m-0", "m-1"]
    assert 1.0 <= now[0] < 1.2


def test_views_that_say_nothing_of_how_far_they_read_hold_a_stream_for_the_bound_and_no_longer():
    collection = mongomock.MongoClient(tz_aware=True)["db"].messages
    hub, now = Hub(per_client=1, capacity=100), [0.0]
    stored_events(collection, [event(1, "clientA", "clientX", 5)])  # by a projector that predates `applied/` documents

    def sleep(seconds: float) -> None:
        now[0] += seconds

    open_stream("clientX", None, hub, history_of(collection), heartbeat_s=0.01, backfill_limit=1000,
                feed_read=lambda: {0: 3, 1: 9, 2: 4}, catch_up_s=5.0, clock=lambda: now[0], sleep=sleep).close()
    assert 5.0 <= now[0] < 5.2, "a projector yet to read its first batch says nothing either: the stream waits for it"
    open_stream("clientX", None, hub, history_of(collection), heartbeat_s=0.01, backfill_limit=1000,
                feed_read=lambda: {0: 0, 1: 0, 2: 0}, catch_up_s=5.0, clock=lambda: now[0], sleep=sleep).close()
    assert now[0] < 5.2, "nothing read by the feed: nothing to wait for"
