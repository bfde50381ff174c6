"""Message pages: placed with redeliveries, interleavings and crashes between writes, every page equals the history's."""

import copy
from datetime import datetime, timedelta, timezone

import mongomock
from hypothesis import given, settings
from hypothesis import strategies as st

from consumer_service.infrastructure.mongo_views import MongoConversationViews
from producer_service.application.ports import PageQuery
from producer_service.infrastructure.mongo_readers import MongoReader, PagedMessages
from shared_adapters.mongo_packed import pack
from shared_domain.clock import parse_iso
from shared_domain.documents import message_document, message_view
from shared_domain.failures import SourcePosition
from shared_domain.message import conversation_key, message_key
from shared_domain.message_pages import Bounds, PageWriter, place, received_stream, walk
from shared_domain.partitioning import partition_of
from shared_domain.stored_events import stored_event

CLIENTS = ("a", "b", "c")
PARTITIONS = 2
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
# A few milliseconds with microseconds beyond them: many messages share a stored sending time.
moments = st.builds(lambda ms, us: T0 + timedelta(milliseconds=ms, microseconds=us),
                    st.integers(0, 12), st.integers(0, 999))
messages = st.lists(st.tuples(st.sampled_from(CLIENTS), st.sampled_from(CLIENTS), moments), min_size=1, max_size=60)


def events_of(drawn):
    """Stored events of the drawn (sender, recipient, sentAt), each recipient's offsets growing in its partition."""
    offsets = [0] * PARTITIONS
    events = []
    for number, (sender, recipient, sent_at) in enumerate(drawn):
        partition = partition_of(recipient.encode(), PARTITIONS)
        events.append((partition, stored_event(f"m{number}", sender, recipient, f"text {number}", sent_at,
                                               SourcePosition("client-messages", partition, offsets[partition]))))
        offsets[partition] += 1
    return events


class Store(dict):
    """Documents by _id, copied in and out as a store does."""

    def load(self, doc_id):
        found = self.get(doc_id)
        return copy.deepcopy(found) if found is not None else None

    def write(self, document):
        self[document["_id"]] = copy.deepcopy(document)


def visible(store):
    """Every message the received streams show."""
    return {message["_id"] for client in CLIENTS for message in walk(store.load, received_stream(client), Bounds())}


@settings(max_examples=150, deadline=None)
@given(messages, st.data())
def test_pages_placed_with_redeliveries_and_crashes_equal_the_same_pages_of_the_history(drawn, data):
    events = events_of(drawn)
    store, done = Store(), set()
    start = 0
    while start < len(events):  # batches as a projector gets them; each may crash after any of its writes
        end = data.draw(st.integers(start + 1, len(events)), label="batch end")
        batch = events[start:end]
        crashes = data.draw(st.lists(st.integers(0, 10**6), max_size=2), label="crashes, each after some writes")
        for crash in [*crashes, None]:
            writer = PageWriter(store.load, leaf=3, node=3)
            place(writer, batch)
            writes = writer.writes()
            for document in writes if crash is None else writes[:crash % max(len(writes), 1)]:
                store.write(document)
            assert done <= visible(store), "a crash between writes hid a message placed by an earlier batch"
        done |= {event.message.key for _, event in batch}
        if data.draw(st.booleans(), label="redeliver an earlier batch"):
            again = data.draw(st.integers(0, end - 1), label="redelivered from")
            writer = PageWriter(store.load, leaf=3, node=3)
            place(writer, events[again:end])
            for document in writer.writes():
                store.write(document)
        start = end
    assert visible(store) == done

    database = mongomock.MongoClient().db
    database.messages.insert_many([message_document(event.message, event.source, event.message.sent_at)
                                   for _, event in events])
    # Some documents as this version writes them, packed; the others as versions before packing wrote them.
    database.pages.insert_many([pack(doc) if data.draw(st.booleans(), label="packed") else doc for doc in store.values()])
    history = MongoReader(database.messages, "sentAt", message_view)
    pages = PagedMessages(history, database.pages, lambda: PARTITIONS)
    for _ in range(6):
        query = data.draw(queries(), label="query")
        assert every_page(pages, query) == every_page(history, query), query


@st.composite
def queries(draw):
    """What a signed-in client may ask of GET /messages: a conversation or its own messages, any filters."""
    caller = draw(st.sampled_from(CLIENTS))
    partner = draw(st.none() | st.sampled_from(CLIENTS))
    any_of = ({"conversation": conversation_key(caller, partner)},) if partner else ({"from": caller}, {"to": caller})
    equals = {field: client for field in ("to", "from")
              if (client := draw(st.none() | st.sampled_from(CLIENTS), label=field)) is not None}
    return PageQuery(equals=equals, since=draw(st.none() | moments, label="since"),
                     until=draw(st.none() | moments, label="until"), limit=draw(st.integers(1, 7), label="limit"),
                     any_of=any_of, newest_first=draw(st.booleans(), label="newest first"))


def every_page(reader, query):
    """Every page of the query, each after the last message of the one before, as the next links go."""
    pages = []
    while True:
        items = reader.find(query)
        pages.append([item["messageId"] for item in items])
        if len(items) < query.limit:
            return pages
        last = items[-1]
        query = PageQuery(**{**query.__dict__, "after": (parse_iso(last["sentAt"]),
                                                          message_key(last["from"], last["messageId"]))})


def test_a_stream_splits_into_leaves_and_nodes_and_a_walk_reads_only_what_it_reaches():
    store = Store()
    events = events_of([("a", "b", T0 + timedelta(seconds=n)) for n in range(40)])
    writer = PageWriter(store.load, leaf=3, node=3)
    place(writer, events)
    for document in writer.writes():
        store.write(document)
    leaves = [doc_id for doc_id in store if doc_id.startswith(received_stream("b") + "/l/")]
    nodes = [doc_id for doc_id in store if doc_id.startswith(received_stream("b") + "/n/")]
    assert len(leaves) >= 40 // 3 and len(nodes) >= len(leaves) // 3, (len(leaves), len(nodes))
    read = []
    newest = walk(lambda doc_id: read.append(doc_id) or store.load(doc_id), received_stream("b"),
                  Bounds(newest_first=True))
    assert next(newest)["messageId"] == "m39"
    assert len(read) == 3, "the root, the last node and the last leaf"
    assert [next(newest)["messageId"] for _ in range(3)] == ["m38", "m37", "m36"]
    assert len(read) == 4, "and the leaf before it"


def test_a_projector_remembers_no_more_messages_than_its_bound():
    database = mongomock.MongoClient().db
    views = MongoConversationViews(database, remembered=100, leaf=8, node=4)
    events = events_of([(CLIENTS[n % 3], CLIENTS[n % 2], T0 + timedelta(milliseconds=n)) for n in range(400)])
    for start in range(0, len(events), 25):
        views.apply(events[start:start + 25])
    remembered = [document for document, _ in views._known.values()]
    held = len(remembered) + sum(len(document.get("messages", ())) for document in remembered)
    assert 50 < held <= 100, held


def test_a_stream_of_one_leaf_or_less_is_its_root_alone_and_grows_into_a_tree_past_it():
    store = Store()
    events = events_of([("a", "b", T0 + timedelta(seconds=n)) for n in range(4)])
    for count in (3, 4):
        writer = PageWriter(store.load, leaf=3, node=3)
        place(writer, events[:count])
        for document in writer.writes():
            store.write(document)
        read = []
        listed = [message["messageId"] for message in
                  walk(lambda doc_id: read.append(doc_id) or store.load(doc_id), received_stream("b"), Bounds())]
        assert listed == [f"m{n}" for n in range(count)]
        assert len(read) == (1 if count == 3 else 4), (count, read)
