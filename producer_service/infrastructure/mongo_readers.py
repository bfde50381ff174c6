"""pymongo readers behind GET /messages and GET /failed-messages."""

from collections.abc import Callable

from pymongo import ASCENDING, DESCENDING
from pymongo.collection import Collection
from pymongo.errors import PyMongoError

from shared_domain.documents import stored_event_of
from shared_domain.stored_events import StoredEvent

from ..application.live import Position, ResumeTooFar
from ..application.ports import PageQuery


class StoreUnavailable(Exception):
    """The store did not answer the query."""


class MongoReader:
    """Pages through one collection in (time field, _id) order."""

    def __init__(self, collection: Collection, time_field: str, view: Callable[[dict], dict]):
        self._collection = collection
        self._time_field = time_field
        self._view = view

    def find(self, query: PageQuery) -> list[dict]:
        """Return one page of API objects matching the query."""
        direction = DESCENDING if query.newest_first else ASCENDING
        order = [(self._time_field, direction), ("_id", direction)]
        try:
            documents = list(self._collection.find(self._filter(query)).sort(order).limit(query.limit))
        except PyMongoError as error:
            raise StoreUnavailable(f"{type(error).__name__}: {error}") from None
        return [self._view(document) for document in documents]

    def _filter(self, query: PageQuery) -> dict:
        """Translate a page query into a MongoDB filter."""
        clauses: list[dict] = [dict(query.equals)]
        time = self._time_field
        if query.since is not None:
            clauses.append({time: {"$gte": query.since}})
        if query.until is not None:
            clauses.append({time: {"$lt": query.until}})
        if query.any_of:
            clauses.append({"$or": list(query.any_of)})
        if query.after is not None:
            moment, last_id = query.after
            beyond = "$lt" if query.newest_first else "$gt"
            clauses.append({"$or": [{time: {beyond: moment}}, {time: moment, "_id": {beyond: last_id}}]})
        return {"$and": clauses} if len(clauses) > 1 else clauses[0]



class MongoHistory:
    """The stored messages of a client by source position: where its stream stands, and what it missed."""

    def __init__(self, collection: Collection):
        self._collection = collection

    def position_now(self, client: str) -> Position:
        """For each recipient among the client's messages, the highest source offset stored.

        One pass over the client's messages rather than an aggregation: FerretDB v1 has no `$max` in `$group`.
        """
        offsets: dict[str, int] = {}
        try:
            for document in self._collection.find({"$or": [{"to": client}, {"from": client}]},
                                                  {"_id": 0, "to": 1, "source.offset": 1}):
                recipient, offset = document["to"], int(document["source"]["offset"])
                offsets[recipient] = max(offset, offsets.get(recipient, -1))
        except PyMongoError as error:
            raise StoreUnavailable(f"{type(error).__name__}: {error}") from None
        return Position(offsets)

    def missed(self, client: str, position: Position, limit: int) -> list[StoredEvent]:
        """The client's messages beyond the position, in source offset order; ResumeTooFar past `limit`."""
        beyond = lambda recipient: {"source.offset": {"$gt": position.offsets.get(recipient, -1)}}
        clauses = [{"to": client, **beyond(client)},
                   *({"from": client, "to": recipient, **beyond(recipient)} for recipient in position.offsets
                     if recipient != client),
                   {"from": client, "to": {"$nin": list(position.offsets)}}]
        try:
            documents = list(self._collection.find({"$or": clauses}).sort([("source.offset", ASCENDING)]).limit(limit + 1))
        except PyMongoError as error:
            raise StoreUnavailable(f"{type(error).__name__}: {error}") from None
        if len(documents) > limit:
            raise ResumeTooFar(f"more than {limit} messages were missed")
        return [stored_event_of(document) for document in documents]
