"""pymongo adapter of the conversation views and message pages: read, changed and written back by the one projector of their partition."""

from collections import OrderedDict
from collections.abc import Iterator

from pymongo.database import Database

from shared_adapters.mongo_client import any_error_as_unavailable
from shared_adapters.mongo_packed import PackedDocuments
from shared_domain.clock import as_utc
from shared_domain.conversation_views import (VIEWS_COLLECTION, applied_id, apply_events, empty_view, read_marker_id,
                                              rebuilt, view_ids)
from shared_domain.documents import MESSAGES_COLLECTION, READ_MARKERS_COLLECTION, stored_event_of
from shared_domain.message_pages import LEAF, NODE, PageWriter, place
from shared_domain.stored_events import StoredEvent


class MongoConversationViews:
    """Applies stored events to the views and pages they concern: at most one lookup and one write by _id per document.

    The projector is the only writer of the views of its partitions, so what it last wrote is what
    the store holds: it keeps up to `remembered` of them (a page leaf counts one per message it holds)
    and looks up only the others. It forgets them all when partitions move (`forget`), since another
    projector may write them meanwhile.
    """

    def __init__(self, database: Database, remembered: int = 20_000, leaf: int = LEAF, node: int = NODE):
        self._views, self._leaf, self._node = PackedDocuments(database[VIEWS_COLLECTION]), leaf, node
        self._remembered = remembered
        self._known = _Remembered()

    def apply(self, events: list[tuple[int, StoredEvent]]) -> int:
        """Apply (stored-events partition, event) pairs; return how many views changed."""
        known = self._known  # `forget` may swap it from the polling thread meanwhile
        try:
            with any_error_as_unavailable():
                views = {view_id: self._lookup(known, view_id) or empty_view(view_id) for view_id in view_ids(events)}
                written = [views[view_id] for view_id in apply_events(views, events)]
                pages = PageWriter(lambda doc_id: self._lookup(known, doc_id), self._leaf, self._node)
                place(pages, events)
                written = [*pages.writes(), *written]  # in the order PageWriter gives: see its docstring
                for document in written:
                    self._views.put(document)
        except BaseException:
            self.forget()  # some changes may be applied in memory and not in the store
            raise
        for document in written:
            self._remember(known, document["_id"], document)
        return len(written)

    def mark_read(self, read_up_to: dict[int, int]) -> None:
        """Say, for each stored-events partition, the offset up to which its events are applied (streams wait on it)."""
        known = self._known
        try:
            with any_error_as_unavailable():
                for partition, offset in read_up_to.items():
                    doc_id = applied_id(partition)
                    current = self._lookup(known, doc_id)
                    if current is None or current["next"] < offset:  # a batch read again says less: keep the most
                        document = {"_id": doc_id, "next": offset}
                        self._views.put(document)
                        self._remember(known, doc_id, document)
        except BaseException:
            self.forget()
            raise

    def forget(self) -> None:
        """Look every view up again: partitions moved, or a write may have failed."""
        self._known = _Remembered()

    def _lookup(self, known: "_Remembered", doc_id: str) -> dict | None:
        """The document as the store holds it (None when it holds none)."""
        if doc_id in known:  # changed in place: a failed write makes apply forget every document
            known.move_to_end(doc_id)
            return known[doc_id][0]
        # One lookup per document: an `$in` is not pushed down to every store (FerretDB v1 scans for it).
        return self._views.get(doc_id)

    def _remember(self, known: "_Remembered", doc_id: str, document: dict) -> None:
        """Keep what was written, forgetting the least recently used beyond the bound."""
        known.weight -= known.pop(doc_id, (None, 0))[1]
        weight = 1 + len(document.get("messages", ()))  # a leaf may hold 64 long messages: each counts
        known[doc_id] = (document, weight)
        known.weight += weight
        while known.weight > self._remembered:
            known.weight -= known.popitem(last=False)[1][1]


class _Remembered(OrderedDict):
    """(document, weight as remembered) by _id, least recently used first, and their total weight."""

    weight = 0


def rebuild_views(database: Database, partitions: int, batch: int = 1000) -> int:
    """Make every view and page again from the stored messages and fill the read markers' counts; return how many.

    Reads the whole history: for existing data and repairs, with the projectors stopped.
    """
    views = rebuilt(_stored_events(database, batch), partitions)
    collection = PackedDocuments(database[VIEWS_COLLECTION])
    collection.keep_only(list(views))
    for view in views.values():
        collection.put(view)
    markers = database[READ_MARKERS_COLLECTION]
    read_up_to = {(marker["client"], marker["with"]): as_utc(marker["upTo"]) for marker in markers.find({})}
    counts = dict.fromkeys(read_up_to, 0)
    for event in _stored_events(database, batch):  # a second pass: how many of each marker's messages it covers
        pair = (event.message.recipient, event.message.sender)
        if pair in read_up_to and event.message.sent_at <= read_up_to[pair]:
            counts[pair] += 1
    for (client, partner), count in counts.items():
        markers.update_one({"_id": read_marker_id(client, partner)}, {"$set": {"readCount": count}})
    return len(views)


def _stored_events(database: Database, batch: int) -> Iterator[StoredEvent]:
    """Every stored message as the event announcing it."""
    for document in database[MESSAGES_COLLECTION].find({}, batch_size=batch):
        yield stored_event_of(document)
