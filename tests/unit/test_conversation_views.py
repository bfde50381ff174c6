"""Conversation views: applied incrementally, with redeliveries, interleavings and rebalances, they equal a rebuild."""

from datetime import datetime, timedelta, timezone
from unittest.mock import patch

import mongomock
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pymongo.errors import ConnectionFailure, OperationFailure

from consumer_service.application.errors import StoreUnavailable
from consumer_service.application.project_views import project_views
from consumer_service.application.records import IncomingRecord
from consumer_service.infrastructure.mongo_views import MongoConversationViews, rebuild_views
from shared_adapters.mongo_packed import BODY, unpack
from shared_domain import conversation_views
from shared_domain.conversation_views import RECENT, VIEWS_COLLECTION, applied_id, positions, rebuilt, summaries
from shared_domain.documents import message_document
from shared_domain.failures import SourcePosition
from shared_domain.partitioning import partition_of
from shared_domain.stored_events import encode_stored_event, stored_event
from tests.unit.strategies import VALID_TEXT

CLIENTS = ("clientA", "clientB", "clientC", "clientD")
PARTITIONS = 3
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def history(draw_pairs, minutes, texts):
    """Stored events of the drawn messages; each recipient's offsets grow in its partition, as the consumer stores them."""
    next_offset = [0] * PARTITIONS
    events = []
    for number, ((sender, recipient), minute, text) in enumerate(zip(draw_pairs, minutes, texts)):
        partition = partition_of(recipient.encode(), PARTITIONS)
        events.append(stored_event(f"m{number}", sender, recipient, text, T0 + timedelta(minutes=minute),
                                   SourcePosition("client-messages", partition, next_offset[partition])))
        next_offset[partition] += 1
    return events


def as_records(events):
    """The stored-events records announcing the events, each in its recipient's partition."""
    return [IncomingRecord("client-messages-stored", event.source.partition, n, event.message.recipient.encode(),
                           encode_stored_event(event.message, event.source), []) for n, event in enumerate(events)]


def all_plausible(sources):
    return [None] * len(sources)


def stored_views(database) -> dict:
    """The views and pages the store holds (how far the projector read each partition apart)."""
    collection = database[VIEWS_COLLECTION]
    return {view["_id"]: unpack(view) for view in collection.find({}) if not view["_id"].startswith("applied/")}


MESSAGES = st.lists(st.tuples(st.sampled_from(CLIENTS), st.sampled_from(CLIENTS)), min_size=1, max_size=40)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_views_applied_with_redeliveries_interleavings_and_rebalances_equal_a_rebuild(data):
    pairs = data.draw(MESSAGES)
    minutes = data.draw(st.lists(st.integers(0, 5), min_size=len(pairs), max_size=len(pairs)))  # ties and skew
    texts = data.draw(st.lists(VALID_TEXT, min_size=len(pairs), max_size=len(pairs)))
    events = history(pairs, minutes, texts)

    # Each partition's events are announced in offset order, since its one consumer stores and announces them so,
    # some stretches again (a consumer that crashed before committing, a batch rewound); the partitions'
    # announcements interleave in any way.
    announced: dict[int, list] = {}
    for event in events:
        own = announced.setdefault(event.source.partition, [])
        own.append(event)
        if data.draw(st.integers(0, 5)) == 5:
            own.extend(own[data.draw(st.integers(0, len(own) - 1)):])
    queues = [list(sequence) for sequence in announced.values()]
    stream = []
    while any(queues):
        queue = data.draw(st.sampled_from([queue for queue in queues if queue]))
        stream.append(queue.pop(0))

    # Logs of arrivals fill sets of any size (a set of 64 is the same code with more entries).
    with patch.object(conversation_views, "ARRIVALS", data.draw(st.integers(1, 6), label="arrivals per set")):
        # The projector reads them in batches; at a rebalance another projector goes on from the last committed
        # batch, so the batch in hand is read again.
        database = mongomock.MongoClient(tz_aware=True)["db"]
        records, committed = as_records(stream), 0
        projector = MongoConversationViews(database, remembered=data.draw(st.integers(1, 10)))
        while committed < len(records):
            size = data.draw(st.integers(1, 8))
            project_views(records[committed:committed + size], projector, all_plausible, PARTITIONS)
            if data.draw(st.integers(0, 4)) < 4:
                committed += size
            else:  # rebalanced before the commit: another projector reads the batch again, knowing nothing yet
                projector = MongoConversationViews(database, remembered=data.draw(st.integers(1, 10)))

        assert stored_views(database) == rebuilt(events, PARTITIONS)
        collection = database[VIEWS_COLLECTION]
        read_marks = {doc["_id"]: unpack(doc)["next"] for doc in collection.find({"_id": {"$regex": "^applied/"}})}
        assert read_marks == {applied_id(p): max(r.offset for r in records if r.partition == p) + 1
                              for p in {r.partition for r in records}}, "each partition read to its last record"
        for event in events:
            database.messages.insert_one(message_document(event.message, event.source, T0))
        rebuild_views(database, PARTITIONS)
        assert stored_views(database) == rebuilt(events, PARTITIONS), "the rebuild command writes the same views"


def test_a_batch_read_again_counts_nothing_twice_and_the_list_and_positions_come_from_the_views():
    events = history([("clientA", "clientB"), ("clientA", "clientB"), ("clientB", "clientA")], [1, 2, 3],
                     ["hello", "again", "hi"])
    database = mongomock.MongoClient(tz_aware=True)["db"]
    views = MongoConversationViews(database)
    for _ in range(3):
        project_views(as_records(events), views, all_plausible, PARTITIONS)
    stored = stored_views(database)
    inbox = stored["in/clientB"]
    outboxes = [view for view_id, view in stored.items() if view_id.startswith("out/clientB/")]
    assert summaries(inbox, outboxes, {}) == [
        {"with": "clientA", "latest": "2026-01-01T00:03:00.000Z", "preview": "hi", "unread": 2}]
    assert positions(inbox, outboxes) == {"clientB": events[1].source.offset, "clientA": events[2].source.offset}


def test_an_inbox_remembers_only_its_last_sending_times_and_counts_the_unread_beyond_them():
    events = history([("clientA", "clientB")] * (RECENT + 5), list(range(RECENT + 5)), ["x"] * (RECENT + 5))
    inbox = rebuilt(events, PARTITIONS)["in/clientB"]
    entry = inbox["peers"][0]
    assert len(entry["recent"]) == RECENT and entry["count"] == RECENT + 5
    read_up_to = lambda minute: {"clientA": {"upTo": T0 + timedelta(minutes=minute)}}
    assert summaries(inbox, [], read_up_to(RECENT + 2))[0]["unread"] == 2
    assert summaries(inbox, [], {"clientA": {"upTo": T0, "readCount": 1}})[0]["unread"] == RECENT + 4


def test_a_stored_event_whose_source_is_not_its_recipients_partition_changes_no_view():
    (event,) = history([("clientA", "clientB")], [1], ["forged"])
    wrong = (event.source.partition + 1) % PARTITIONS
    forged = stored_event("m0", "clientA", "clientB", "forged", event.message.sent_at,
                          SourcePosition("client-messages", wrong, 0))
    database = mongomock.MongoClient(tz_aware=True)["db"]
    project_views(as_records([forged]), MongoConversationViews(database), all_plausible, PARTITIONS)
    assert stored_views(database) == {}


@pytest.mark.parametrize("failure", [
    ConnectionFailure("down"),
    # What FerretDB answers a write its own shutdown cut short: no fault of the document, so retried, not a crash.
    OperationFailure("sql: transaction has already been committed or rolled back", code=1),
])
def test_a_projector_that_failed_to_write_looks_every_view_up_again(failure):
    events = history([("clientA", "clientB"), ("clientA", "clientB")], [1, 2], ["one", "two"])
    database = mongomock.MongoClient(tz_aware=True)["db"]
    projector = MongoConversationViews(database)
    project_views(as_records(events[:1]), projector, all_plausible, PARTITIONS)
    original = database[VIEWS_COLLECTION].replace_one
    database[VIEWS_COLLECTION].replace_one = lambda *args, **kwargs: (_ for _ in ()).throw(failure)
    with pytest.raises(StoreUnavailable):
        project_views(as_records(events[1:]), projector, all_plausible, PARTITIONS)
    database[VIEWS_COLLECTION].replace_one = original
    project_views(as_records(events[1:]), projector, all_plausible, PARTITIONS)
    assert stored_views(database) == rebuilt(events, PARTITIONS), "nothing applied in memory only is taken as written"


def test_a_view_written_before_views_logged_arrivals_logs_from_then_on_and_never_answers_for_before():
    events = history([("clientA", "clientB")] * 6, [0] * 6, ["hi"] * 6)
    partition = events[0].source.partition
    views = {view_id: conversation_views.empty_view(view_id)
             for view_id in conversation_views.view_ids((partition, e) for e in events)}
    conversation_views.apply_events(views, [(partition, e) for e in events[:3]])
    for view in views.values():  # as a store upgraded from before the logs holds them
        for name in ("arrived", "sets", "loggedAfter"):
            view.pop(name, None)
    with patch.object(conversation_views, "ARRIVALS", 2):
        conversation_views.apply_events(views, [(partition, e) for e in events[3:]])
    inbox, sets = views["in/clientB"], {doc_id: doc for doc_id, doc in views.items() if doc_id.startswith("a/")}
    assert inbox["loggedAfter"] == events[2].source.offset and inbox["sets"] == 1
    read = sets.get
    assert [a["offset"] for a in conversation_views.arrivals_after(inbox, read, events[2].source.offset, 10)] == [
        e.source.offset for e in events[3:]]
    assert conversation_views.arrivals_after(inbox, read, events[5].source.offset, 10) == []
    with pytest.raises(conversation_views.NotLogged):
        conversation_views.arrivals_after(inbox, read, events[1].source.offset, 10)
    with pytest.raises(conversation_views.NotLogged):
        conversation_views.arrivals_after(inbox, read, events[2].source.offset, 2)


def test_a_projector_goes_on_from_views_written_before_packing_and_writes_them_packed():
    events = history([("clientA", "clientB"), ("clientB", "clientA"), ("clientA", "clientB")], [1, 2, 3],
                     ["one", "two", "three"])
    database = mongomock.MongoClient(tz_aware=True)["db"]
    database[VIEWS_COLLECTION].insert_many(list(rebuilt(events[:2], PARTITIONS).values()))  # unpacked, as before
    project_views(as_records(events[2:]), MongoConversationViews(database), all_plausible, PARTITIONS)
    assert stored_views(database) == rebuilt(events, PARTITIONS)
    assert database[VIEWS_COLLECTION].find_one({"_id": "in/clientB"}).keys() == {"_id", BODY}, "rewritten packed"
