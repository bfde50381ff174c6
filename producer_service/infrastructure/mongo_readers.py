"""pymongo readers behind GET /messages, GET /failed-messages, GET /stream and GET /conversations."""

from collections.abc import Callable
from datetime import datetime

from pymongo import ASCENDING, DESCENDING
from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError, PyMongoError

from shared_domain.availability import StoreUnavailable
from shared_domain.clock import to_iso
from shared_domain.documents import stored_event_of
from shared_domain.stored_events import StoredEvent

from ..application.live import Position, ResumeTooFar
from ..application.ports import PageQuery


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
        """The client's messages beyond the position, in source offset order; ResumeTooFar past `limit`.

        Whether more than `limit` were missed is asked first with ids only, so that a position far
        behind (an empty one, say) costs `limit` small index entries, not `limit` whole messages.
        """
        beyond = lambda recipient: {"source.offset": {"$gt": position.offsets.get(recipient, -1)}}
        clauses = [{"to": client, **beyond(client)},
                   *({"from": client, "to": recipient, **beyond(recipient)} for recipient in position.offsets
                     if recipient != client),
                   {"from": client, "to": {"$nin": list(position.offsets)}}]
        order = [("source.offset", ASCENDING)]
        try:
            if next(self._collection.find({"$or": clauses}, {"_id": 1}).sort(order).skip(limit).limit(1), None):
                raise ResumeTooFar(f"more than {limit} messages were missed")
            documents = list(self._collection.find({"$or": clauses}).sort(order).limit(limit))
        except PyMongoError as error:
            raise StoreUnavailable(f"{type(error).__name__}: {error}") from None
        return [stored_event_of(document) for document in documents]


class MongoConversations:
    """A client's conversations: the other client, the latest message, and how many arrived since it last read."""

    def __init__(self, messages: Collection, read_markers: Collection):
        self._messages = messages
        self._markers = read_markers

    def summaries(self, client: str) -> list[dict]:
        """Every conversation of the client, latest first.

        One pass over the client's messages: FerretDB v1 has no `$max` in `$group`.
        """
        try:
            read = {marker["with"]: marker["upTo"] for marker in self._markers.find({"client": client})}
            conversations: dict[str, dict] = {}
            for document in self._messages.find({"$or": [{"to": client}, {"from": client}]},
                                                {"from": 1, "to": 1, "sentAt": 1}):
                partner = document["to"] if document["from"] == client else document["from"]
                entry = conversations.setdefault(partner, {"with": partner, "latest": document["sentAt"], "unread": 0})
                entry["latest"] = max(entry["latest"], document["sentAt"])
                if document["to"] == client and (partner not in read or document["sentAt"] > read[partner]):
                    entry["unread"] += 1
        except PyMongoError as error:
            raise StoreUnavailable(f"{type(error).__name__}: {error}") from None
        ordered = sorted(conversations.values(), key=lambda entry: (entry["latest"], entry["with"]), reverse=True)
        return [{**entry, "latest": to_iso(entry["latest"])} for entry in ordered]

    def mark_read(self, client: str, partner: str, up_to: datetime) -> None:
        """Remember that the client has read its conversation with `partner` up to a moment (never backwards)."""
        key = f"{client}\x00{partner}"
        try:
            # One conditional write: a marker already further on matches nothing, and its upsert collides.
            self._markers.update_one({"_id": key, "upTo": {"$lt": up_to}},
                                     {"$set": {"client": client, "with": partner, "upTo": up_to}}, upsert=True)
        except DuplicateKeyError:
            pass
        except PyMongoError as error:
            raise StoreUnavailable(f"{type(error).__name__}: {error}") from None
