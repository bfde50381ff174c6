"""pymongo readers behind GET /messages, GET /stream and GET /conversations."""

import time
from collections.abc import Callable
from datetime import datetime

from pymongo import ASCENDING, DESCENDING
from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError, PyMongoError

from shared_adapters.mongo_client import stopped_at_time_limit
from shared_adapters.mongo_packed import PackedDocuments
from shared_domain.availability import StoreUnavailable
from shared_domain.conversation_views import (NotLogged, applied_id, arrivals_after, inbox_id, outbox_id, positions,
                                              read_count, read_marker_id, summaries)
from shared_domain.documents import message_view, stored_event_of
from shared_domain.message_pages import Bounds, page, visible_streams
from shared_domain.stored_events import StoredEvent

from ..application.live import Position, ResumeTooFar
from ..application.ports import PageQuery


class MongoReader:
    """Pages through one collection in (time field, _id) order; the store stops a query after `time_limit_ms` (0: never),
    which raises QueryTooCostly."""

    def __init__(self, collection: Collection, time_field: str, view: Callable[[dict], dict], time_limit_ms: int = 0):
        self._collection = collection
        self._time_field = time_field
        self._view = view
        self._time_limit = time_limit_ms or None

    def find(self, query: PageQuery) -> list[dict]:
        """Return one page of API objects matching the query."""
        direction = DESCENDING if query.newest_first else ASCENDING
        order = [(self._time_field, direction), ("_id", direction)]
        try:
            with stopped_at_time_limit(self._time_limit):
                documents = list(self._collection.find(self._filter(query)).sort(order).limit(query.limit)
                                 .max_time_ms(self._time_limit))
        except PyMongoError as error:
            raise StoreUnavailable(f"{type(error).__name__}: {error}") from None
        return [self._view(document) for document in documents]

    def _filter(self, query: PageQuery) -> dict:
        """Translate a page query into a MongoDB filter."""
        clauses: list[dict] = [dict(query.equals)] if query.equals else []
        time = self._time_field
        if query.since is not None:
            clauses.append({time: {"$gte": query.since}})
        if query.until is not None:
            clauses.append({time: {"$lt": query.until}})
        if len(query.any_of) == 1:
            clauses.append(query.any_of[0])
        elif query.any_of:
            clauses.append({"$or": list(query.any_of)})
        if query.after is not None:
            moment, last_id = query.after
            beyond = "$lt" if query.newest_first else "$gt"
            clauses.append({"$or": [{time: {beyond: moment}}, {time: moment, "_id": {beyond: last_id}}]})
        return {"$and": clauses} if len(clauses) > 1 else (clauses[0] if clauses else {})



class PagedMessages:
    """GET /messages: a page merged from the message streams the caller may read, a few lookups by _id each.

    Only a query for everyone's messages (authentication off, no `with`) reads the history instead.
    """

    def __init__(self, history: MongoReader, pages: Collection, partitions: Callable[[], int]):
        self._history, self._pages, self._partitions = history, PackedDocuments(pages), partitions

    def find(self, query: PageQuery) -> list[dict]:
        """Return one page of API objects matching the query."""
        feed = len(query.any_of) == 2  # what one client sent or received: its sent streams are one per partition
        streams = visible_streams(query.any_of, query.equals, self._partitions() if feed else 0)
        if streams is None:
            return self._history.find(query)
        bounds = Bounds.of(query.since, query.until, query.after, query.newest_first)
        try:
            messages = page(self._pages.get, streams, bounds, query.limit, keep=lambda message: _matches(message, query))
        except PyMongoError as error:
            raise StoreUnavailable(f"{type(error).__name__}: {error}") from None
        return [message_view(message) for message in messages]


def _matches(message: dict, query: PageQuery) -> bool:
    """Whether a message from the streams matches the query's filters (the streams already hold only those)."""
    return (all(message.get(field) == value for field, value in query.equals.items())
            and any(all(message.get(field) == value for field, value in allowed.items()) for allowed in query.any_of))


class PartitionCount:
    """The stored-events topic's partition count, asked of Kafka at most every `refresh_s` seconds."""

    def __init__(self, look_up: Callable[[], int | None], refresh_s: float = 60.0, clock=time.monotonic):
        self._look_up, self._refresh, self._clock = look_up, refresh_s, clock
        self._count: int | None = None
        self._asked = 0.0

    def __call__(self) -> int:
        """The count; StoreUnavailable when Kafka never said."""
        if self._count is None or self._clock() - self._asked >= self._refresh:
            self._asked = self._clock()
            self._count = self._look_up() or self._count
        if self._count is None:
            raise StoreUnavailable("the partitions of the stored-events topic are not known: Kafka does not answer")
        return self._count


class MongoViews:
    """A client's conversation views: its inbox and its outbox of each stored-events partition, each one lookup by _id."""

    def __init__(self, views: Collection, partitions: Callable[[], int]):
        self._views, self._partitions = PackedDocuments(views), partitions

    def inbox(self, client: str) -> dict | None:
        """The client's inbox, None before its first message."""
        return self.document(inbox_id(client))

    def document(self, doc_id: str) -> dict | None:
        """Any document of the views' collection, by _id."""
        return self._views.get(doc_id)

    def of(self, client: str) -> tuple[dict | None, list[dict]]:
        """The client's inbox (None before its first message) and its outboxes."""
        ids = [inbox_id(client), *(outbox_id(client, partition) for partition in range(self._partitions()))]
        try:
            # One lookup per view: an `$in` is not pushed down to every store (FerretDB v1 scans for it).
            inbox, *outboxes = [self.document(view_id) for view_id in ids]
        except PyMongoError as error:
            raise StoreUnavailable(f"{type(error).__name__}: {error}") from None
        return inbox, [outbox for outbox in outboxes if outbox is not None]


class MongoHistory:
    """The stored messages of a client by source position: where its stream stands, and what it missed."""

    def __init__(self, collection: Collection, views: MongoViews):
        self._collection, self._views = collection, views

    def position_now(self, client: str) -> Position:
        """For each recipient among the client's messages, the highest source offset its views have applied."""
        return Position(positions(*self._views.of(client)))

    def missed(self, client: str, position: Position, limit: int) -> list[StoredEvent]:
        """The client's messages beyond the position, in source offset order, found in its views' logs of arrivals.

        Lookups by _id only: the client's views, the full sets of arrivals read back, and each missed
        message. ResumeTooFar when more than `limit` were missed, or when a log would be read back
        through more than `limit` arrivals or further than it reaches.
        """
        offsets = position.offsets
        inbox, outboxes = self._views.of(client)
        try:
            keys = [arrival["_id"] for arrival in self._arrivals(inbox, offsets.get(client, -1), limit)]
            for outbox in outboxes:
                behind = [offsets.get(entry["with"], -1) for entry in outbox["peers"]
                          if entry["offset"] > offsets.get(entry["with"], -1)]
                keys += [arrival["_id"] for arrival in self._arrivals(outbox, min(behind, default=2**63), limit)
                         if arrival["offset"] > offsets.get(arrival["to"], -1)]
        except NotLogged as error:
            raise ResumeTooFar(f"what was missed is not found by key: {error}") from None
        keys = list(dict.fromkeys(keys))  # a message to oneself is in the inbox and in an outbox
        if len(keys) > limit:
            raise ResumeTooFar(f"more than {limit} messages were missed")
        try:
            documents = [self._collection.find_one({"_id": key}) for key in keys]
        except PyMongoError as error:
            raise StoreUnavailable(f"{type(error).__name__}: {error}") from None
        events = [stored_event_of(document) for document in documents if document is not None]
        return sorted(events, key=lambda event: event.source.offset)

    def applied(self, partitions) -> dict[int, int]:
        """For each stored-events partition the views say, the offset before which they applied every event; one
        lookup each."""
        try:
            documents = {partition: self._views.document(applied_id(partition)) for partition in partitions}
        except PyMongoError as error:
            raise StoreUnavailable(f"{type(error).__name__}: {error}") from None
        return {partition: document["next"] for partition, document in documents.items() if document is not None}

    def _arrivals(self, view: dict | None, floor: int, limit: int) -> list[dict]:
        """The view's logged arrivals above `floor`, oldest first."""
        if view is None:
            return []
        try:
            return arrivals_after(view, lambda doc_id: self._views.document(doc_id), floor, limit)
        except PyMongoError as error:
            raise StoreUnavailable(f"{type(error).__name__}: {error}") from None


class MongoConversations:
    """A client's conversations from its views: the other client, the latest message, and how many arrived unread."""

    def __init__(self, views: MongoViews, read_markers: Collection):
        self._views = views
        self._markers = read_markers

    def summaries(self, client: str) -> list[dict]:
        """Every conversation of the client, latest first; one lookup per view and per conversation's marker."""
        inbox, outboxes = self._views.of(client)
        try:
            markers = {entry["with"]: marker for entry in (inbox or {}).get("peers", [])
                       if (marker := self._markers.find_one({"_id": read_marker_id(client, entry["with"])}))}
        except PyMongoError as error:
            raise StoreUnavailable(f"{type(error).__name__}: {error}") from None
        return summaries(inbox, outboxes, markers)

    def mark_read(self, client: str, partner: str, up_to: datetime) -> None:
        """Remember that the client has read its conversation with `partner` up to a moment (never backwards).

        With it, how many of the partner's messages that covers, when the client's inbox already holds
        every one of them (a count it cannot tell yet stays as it was: the moment alone then decides).
        """
        key = read_marker_id(client, partner)
        try:
            count = read_count(self._views.inbox(client), partner, up_to)
            # One conditional write: a marker already further on matches nothing, and its upsert collides.
            self._markers.update_one({"_id": key, "upTo": {"$lt": up_to}},
                                     {"$set": {"client": client, "with": partner, "upTo": up_to,
                                               **({"readCount": count} if count is not None else {})}}, upsert=True)
        except DuplicateKeyError:
            pass
        except PyMongoError as error:
            raise StoreUnavailable(f"{type(error).__name__}: {error}") from None
