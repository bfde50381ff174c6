"""pymongo readers behind GET /messages, GET /failed-messages, GET /stream and GET /conversations."""

from collections.abc import Callable
from datetime import datetime

from pymongo import ASCENDING, DESCENDING
from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError, PyMongoError

from shared_domain.availability import StoreUnavailable
from shared_domain.conversation_views import (inbox_id, missed_messages, outbox_id, page_sources, positions, read_count,
                                              read_marker_id, summaries)
from shared_domain.documents import message_view, stored_event_of
from shared_domain.message_buckets import Bounds, Sequence, page
from shared_domain.stored_events import StoredEvent

from ..application.live import Position, ResumeTooFar
from ..application.ports import Page, PageQuery


class MongoReader:
    """Pages through one collection in (time field, _id) order."""

    def __init__(self, collection: Collection, time_field: str, view: Callable[[dict], dict]):
        self._collection = collection
        self._time_field = time_field
        self._view = view

    def find(self, query: PageQuery) -> Page:
        """Return one page of API objects matching the query."""
        direction = DESCENDING if query.newest_first else ASCENDING
        order = [(self._time_field, direction), ("_id", direction)]
        try:
            documents = list(self._collection.find(self._filter(query)).sort(order).limit(query.limit))
        except PyMongoError as error:
            raise StoreUnavailable(f"{type(error).__name__}: {error}") from None
        return Page([self._view(document) for document in documents])

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



class MongoViews:
    """A client's conversation views: its inbox and its outbox of each stored-events partition, each one lookup by _id."""

    def __init__(self, views: Collection, partitions: Callable[[], int | None]):
        self._views, self._partitions = views, partitions

    def partitions(self) -> int:
        """The stored-events topic's partition count; StoreUnavailable when Kafka never said."""
        count = self._partitions()
        if count is None:
            raise StoreUnavailable("the partitions of the stored-events topic are not known: Kafka does not answer")
        return count

    def inbox(self, client: str) -> dict | None:
        """The client's inbox, None before its first message."""
        return self._views.find_one({"_id": inbox_id(client)})

    def count(self, view_id: str) -> int:
        """How many messages a view has counted into its sequence (0 before its first)."""
        return (self._views.find_one({"_id": view_id}, {"count": 1}) or {}).get("count", 0)

    def bucket(self, bucket_id: str) -> dict | None:
        """A message bucket, None when there is none."""
        return self._views.find_one({"_id": bucket_id})

    def of(self, client: str) -> tuple[dict | None, list[dict]]:
        """The client's inbox (None before its first message) and its outboxes."""
        ids = [inbox_id(client), *(outbox_id(client, partition) for partition in range(self.partitions()))]
        try:
            # One lookup per view: an `$in` is not pushed down to every store (FerretDB v1 scans for it).
            inbox, *outboxes = [self._views.find_one({"_id": view_id}) for view_id in ids]
        except PyMongoError as error:
            raise StoreUnavailable(f"{type(error).__name__}: {error}") from None
        return inbox, [outbox for outbox in outboxes if outbox is not None]


class BucketedMessages:
    """GET /messages from the message buckets: a few lookups by _id a page, whatever the history behind it.

    Everyone's messages (authentication off) have no buckets: they are paged through the history.
    """

    def __init__(self, history: MongoReader, views: MongoViews):
        self._history, self._views = history, views

    def find(self, query: PageQuery) -> Page:
        """Return one page of API objects matching the query."""
        sources = page_sources(query.any_of, query.equals, self._views.partitions)
        if sources is None:
            return self._history.find(query)
        bounds = Bounds(query.limit, query.newest_first, query.after, query.since, query.until)
        try:
            sequences = [Sequence(sequence, self._views.count(head)) for sequence, head in sources]
            messages, hints = page(sequences, self._views.bucket, bounds, query.hints)
        except PyMongoError as error:
            raise StoreUnavailable(f"{type(error).__name__}: {error}") from None
        return Page([message_view(message) for message in messages], hints)


class MongoHistory:
    """Where a client's stream stands, and what it missed, from the client's views and message buckets."""

    def __init__(self, views: MongoViews):
        self._views = views

    def position_now(self, client: str) -> Position:
        """For each recipient among the client's messages, the highest source offset its views have applied."""
        return Position(positions(*self._views.of(client)))

    def missed(self, client: str, position: Position, limit: int) -> list[StoredEvent]:
        """The client's messages beyond the position, in source offset order; ResumeTooFar past `limit`."""
        inbox, outboxes = self._views.of(client)
        try:
            documents = missed_messages(client, inbox, outboxes, position.offsets, self._views.bucket, limit)
        except PyMongoError as error:
            raise StoreUnavailable(f"{type(error).__name__}: {error}") from None
        if documents is None:
            raise ResumeTooFar(f"more than {limit} messages were missed")
        return [stored_event_of(document) for document in documents]


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
