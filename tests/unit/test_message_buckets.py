"""Message buckets: every page of every conversation and feed equals the same page read from the messages collection."""

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import mongomock
from hypothesis import given, settings
from hypothesis import strategies as st

from consumer_service.infrastructure.mongo_views import rebuild_views
from producer_service.application.ports import PageQuery
from producer_service.infrastructure.mongo_readers import BucketedMessages, MongoReader, MongoViews
from shared_domain import message_buckets
from shared_domain.clock import parse_iso
from shared_domain.conversation_views import VIEWS_COLLECTION
from shared_domain.documents import message_document, message_view
from shared_domain.failures import SourcePosition
from shared_domain.message import conversation_key
from shared_domain.partitioning import partition_of
from shared_domain.stored_events import stored_event

from .conftest import small_buckets
from .test_conversation_views import project_with_rebalances

CLIENTS = ("clientA", "clientB", "clientC", "clientD")
PARTITIONS = 3
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def sent_history(pairs, lags, ties):
    """Stored events in storing order: message n is sent n seconds in, minus a lag under DISORDER, or with the one before."""
    next_offset, events, sent_at = [0] * PARTITIONS, [], T0
    for number, ((sender, recipient), lag, tie) in enumerate(zip(pairs, lags, ties)):
        if not (tie and events):
            sent_at = T0 + timedelta(seconds=number - lag)
        partition = partition_of(recipient.encode(), PARTITIONS)
        events.append(stored_event(f"m{number}", sender, recipient, f"text {number}", sent_at,
                                   SourcePosition("client-messages", partition, next_offset[partition])))
        next_offset[partition] += 1
    return events


def project(data, database, events):
    """Announce each partition's events in offset order, stretches again, the partitions interleaved; project them
    in batches, with rebalances that make another projector read the batch in hand again."""
    queues = [[event for event in events if event.source.partition == partition] for partition in range(PARTITIONS)]
    for queue in queues:
        for at in sorted(data.draw(st.lists(st.integers(0, max(len(queue) - 1, 0)), max_size=2)), reverse=True):
            queue[at:at] = queue[max(0, at - data.draw(st.integers(1, 4))):at]  # announced again
    stream = []
    while any(queues):
        stream.append(data.draw(st.sampled_from([queue for queue in queues if queue])).pop(0))
    project_with_rebalances(data, database, stream)


def every_page(reader, query: PageQuery) -> list[dict]:
    """Every item, following each page's last (sentAt, id) and hints as the next link's cursor carries them."""
    items, query = [], replace(query, after=None, hints=None)
    while True:
        found = reader.find(query)
        items += found.items
        if len(found.items) < query.limit:
            return items
        last = found.items[-1]
        query = replace(query, after=(parse_iso(last["sentAt"]), f"{last['from']}/{last['messageId']}"),
                        hints=found.hints or None)


def readers(database):
    history = MongoReader(database.messages, "sentAt", message_view)
    return BucketedMessages(history, MongoViews(database[VIEWS_COLLECTION], lambda: PARTITIONS)), history


def queries(client: str, limit: int, newest_first: bool, since, until):
    """What the client may ask for: each conversation, its feed, and its feed narrowed by sender or recipient."""
    feed = ({"from": client}, {"to": client})
    shapes = [({}, ({"conversation": conversation_key(client, peer)},)) for peer in CLIENTS]
    shapes += [({}, feed), ({"to": client}, feed), ({"from": client}, feed)]
    shapes += [({"from": peer}, feed) for peer in CLIENTS if peer != client]
    shapes += [({"to": peer, "from": client}, feed) for peer in CLIENTS]
    return [PageQuery(equals=equals, any_of=visible, limit=limit, newest_first=newest_first, since=since, until=until)
            for equals, visible in shapes]


# Two clients make long sequences, four many short ones.
PAIRS = st.integers(2, len(CLIENTS)).flatmap(lambda known: st.lists(
    st.tuples(st.sampled_from(CLIENTS[:known]), st.sampled_from(CLIENTS[:known])), min_size=1, max_size=40))


@settings(max_examples=120, deadline=None)
@given(st.data())
def test_every_page_from_the_buckets_equals_the_page_read_from_the_messages(data):
    with small_buckets():
        check_every_page(data)


def check_every_page(data):
    pairs = data.draw(PAIRS)
    lags = data.draw(st.lists(st.integers(0, int(message_buckets.DISORDER) - 1), min_size=len(pairs),
                              max_size=len(pairs)))
    ties = data.draw(st.lists(st.booleans(), min_size=len(pairs), max_size=len(pairs)))  # a batch: one sentAt
    events = sent_history(pairs, lags, ties)
    database = mongomock.MongoClient(tz_aware=True)["db"]
    for event in events:
        database.messages.insert_one(message_document(event.message, event.source, T0))
    if data.draw(st.booleans()):
        project(data, database, events)
    else:
        rebuild_views(database, PARTITIONS)
    buckets, history = readers(database)

    limit, newest_first = data.draw(st.integers(1, 5)), data.draw(st.booleans())
    since, until = (data.draw(st.none() | st.integers(-10, len(pairs) + 1).map(lambda s: T0 + timedelta(seconds=s)))
                    for _ in range(2))
    for client in CLIENTS:
        for query in queries(client, limit, newest_first, since, until):
            assert every_page(buckets, query) == every_page(history, query), (client, query)


def test_a_page_costs_the_same_lookups_at_ten_times_the_history():
    def lookups(messages: int) -> list[int]:
        database = mongomock.MongoClient(tz_aware=True)["db"]
        events = sent_history([("clientA", "clientB"), ("clientB", "clientA")] * (messages // 2), [0] * messages,
                              [False] * messages)
        counted = {"calls": 0}
        for event in events:
            database.messages.insert_one(message_document(event.message, event.source, T0))
        rebuild_views(database, PARTITIONS)
        buckets = BucketedMessages(MongoReader(database.messages, "sentAt", message_view),
                                   MongoViews(_Counted(database[VIEWS_COLLECTION], counted), lambda: PARTITIONS))
        costs = []
        for query in (PageQuery(equals={}, any_of=({"conversation": "clientA|clientB"},), newest_first=True),
                      PageQuery(equals={}, any_of=({"from": "clientA"}, {"to": "clientA"}), newest_first=True)):
            for number in range(10):  # the newest page and the nine older ones after it
                counted["calls"] = 0
                found = buckets.find(query)
                costs.append(counted["calls"])
                last = found.items[-1]
                query = replace(query, after=(parse_iso(last["sentAt"]), f"{last['from']}/{last['messageId']}"),
                                hints=found.hints)
        return costs

    assert lookups(10_000) == lookups(1_000)


class _Counted:
    """A collection whose find_one calls are counted."""

    def __init__(self, collection, counted: dict):
        self._collection, self._counted = collection, counted

    def find_one(self, *args, **kwargs):
        self._counted["calls"] += 1
        return self._collection.find_one(*args, **kwargs)
