"""pymongo readers behind GET /messages and GET /failed-messages."""

from collections.abc import Callable

from pymongo import ASCENDING, DESCENDING
from pymongo.collection import Collection
from pymongo.errors import PyMongoError

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

