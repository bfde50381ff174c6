"""pymongo adapters: the idempotent message store, the writer it and the failed-messages projection share, indexes."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import islice

import bson
from bson.errors import BSONError
from pymongo import ASCENDING, MongoClient
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import BulkWriteError, PyMongoError

from shared_adapters.mongo_client import connect, is_transient, transient_as_unavailable
from shared_domain import failed_messages
from shared_domain.clock import utc_now
from shared_domain.documents import MESSAGES_COLLECTION, message_document, position_view
from shared_domain.failures import SourcePosition
from shared_domain.message import Message, conversation_key, message_key

from ..application.errors import StoreUnavailable
from ..application.ports import Saved

DUPLICATE_KEY = 11000
# The codes by which a store refuses a document for what it holds (BadValue, TypeMismatch, Overflow, InvalidBSON,
# DollarPrefixedFieldName, InvalidIdField, InvalidDBRef, EmptyFieldName, DottedFieldName, DocumentValidationFailure,
# BSONObjectTooLarge, KeyTooLong): the same write fails again. Any other refusal (a store shutting down, a busy
# database file, an internal error) says nothing of the document, so it is retried, then dead-lettered as
# StoreUnavailable, which operators replay once the store is well.
DOCUMENT_FAULTS = frozenset({2, 14, 15, 22, 52, 53, 55, 56, 57, 121, 10334, 17280})
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024


def connect_for_operators(uri: str, timeout_ms: int) -> MongoClient:
    """A client for operator work, whose reads and writes may take up to two minutes.

    Operators change many records per request, which FerretDB's SQLite backend does one
    collection scan per record; an outage is still noticed after `timeout_ms`.
    """
    return connect(uri, timeout_ms, operation_timeout_ms=120_000)


def ensure_indexes(database: Database) -> None:
    """Create the indexes the queries of both services rely on."""
    messages = database[MESSAGES_COLLECTION]
    for party in ("to", "from"):
        messages.create_index([(party, ASCENDING), ("sentAt", ASCENDING), ("_id", ASCENDING)])
    messages.create_index([("sentAt", ASCENDING), ("_id", ASCENDING)])
    # Live delivery: where a client's stream stands, and what it missed, by source offset.
    messages.create_index([("to", ASCENDING), ("source.offset", ASCENDING)])
    messages.create_index([("from", ASCENDING), ("to", ASCENDING), ("source.offset", ASCENDING)])
    messages.create_index([("from", ASCENDING), ("source.offset", ASCENDING)])
    for keys in failed_messages.INDEXES:
        database[failed_messages.FAILED_MESSAGES_COLLECTION].create_index(list(keys))
    # Sessions (the producer's and the operator server's); conversations are read by _id (conversation_views).
    database["sessions"].create_index([("expiresAt", ASCENDING)])


@dataclass
class Inserted:
    """What an insert of many documents did not do, by each document's place: refused for good, or there already."""

    refused: dict[int, str] = field(default_factory=dict)
    present: list[int] = field(default_factory=list)


class IdempotentWriter:
    """Inserts documents keyed on _id into one collection; creates the indexes on first use."""

    def __init__(self, database: Database, collection: str):
        self._database = database
        self._collection: Collection = database[collection]
        self._indexed = False

    def _insert_new(self, documents: list[dict], collection: Collection | None = None) -> Inserted:
        """Insert documents not there yet; say which were refused for good and which were there already."""
        if not documents:
            return Inserted()
        with transient_as_unavailable():
            if not self._indexed:
                # Done on first use, so a service started while the store is down still runs.
                ensure_indexes(self._database)
                self._indexed = True
            return _insert_ignoring_duplicates(self._collection if collection is None else collection, documents)


# A message whose sender sent it before, in another record: already stored and announced then.
EARLIER = object()


class MongoMessageStore(IdempotentWriter):
    """Stores messages under their sender and message id; a message already there is judged, not written again."""

    def __init__(self, database: Database, clock=utc_now):
        super().__init__(database, MESSAGES_COLLECTION)
        self._clock = clock

    def save_all(self, messages: list[tuple[Message, SourcePosition]],
                 replaying: Mapping[int, SourcePosition] | None = None) -> Saved:
        """Insert every message not stored yet; judge those whose sender already used their id."""
        stored_at = self._clock()
        documents = [message_document(message, source, stored_at) for message, source in messages]
        inserted = self._insert_new(documents)
        saved = Saved(refused=inserted.refused)
        with transient_as_unavailable():
            for index in inserted.present:
                verdict = self._judge(documents[index], (replaying or {}).get(index))
                if verdict is EARLIER:
                    saved.earlier.add(index)
                elif verdict is not None:
                    saved.refused[index] = verdict
        return saved

    def _judge(self, document: dict, replayed: SourcePosition | None) -> str | object | None:
        """A document whose _id is taken: None when this very record stored it, or the record it replays, EARLIER for
        a resend, else why not.

        One lookup by _id, the query every store serves from its index.
        """
        existing = self._collection.find_one({"_id": document["_id"]}, {"to": 1, "message": 1, "source": 1})
        if existing is None or existing.get("source") == document["source"]:
            return None  # stored by this record before (a redelivery), or deleted since: announce it again
        if replayed is not None and existing.get("source") == position_view(replayed):
            # Stored by the record this one replays, whose store call failed after all the same: it was dead-lettered
            # instead of announced, so nobody has seen it yet.
            if (existing.get("to"), existing.get("message")) == (document["to"], document["message"]):
                return None
        if (existing.get("to"), existing.get("message")) == (document["to"], document["message"]):
            return EARLIER
        return (f"{document['from']} already sent another message with messageId {document['messageId']}; "
                "a message id is used for one message only")


def _insert_ignoring_duplicates(collection: Collection, documents: list[dict]) -> Inserted:
    """insert_many(ordered=False), where an existing _id is reported, not refused."""
    try:
        collection.insert_many(documents, ordered=False)
    except (BSONError, OverflowError, ValueError) as error:
        # Some document cannot be encoded at all: refuse those, insert the others (inserts are idempotent).
        unencodable = _unencodable(documents)
        if not unencodable:
            return Inserted({index: f"{type(error).__name__}: {error}" for index in range(len(documents))})
        places = [index for index in range(len(documents)) if index not in unencodable]
        rest = _insert_ignoring_duplicates(collection, [documents[index] for index in places]) if places else Inserted()
        return Inserted(unencodable | {places[index]: reason for index, reason in rest.refused.items()},
                        [places[index] for index in rest.present])
    except BulkWriteError as error:
        if error.details.get("writeConcernErrors"):
            raise StoreUnavailable(f"write concern not met: {error.details['writeConcernErrors']}") from None
        inserted = Inserted()
        for item in error.details.get("writeErrors", []):
            if item.get("code") == DUPLICATE_KEY:
                inserted.present.append(item["index"])
            elif item.get("code") in DOCUMENT_FAULTS:
                inserted.refused[item["index"]] = item.get("errmsg", "write refused")
            else:
                raise StoreUnavailable(f"write refused (code {item.get('code')}): {item.get('errmsg')}") from None
        return inserted
    except PyMongoError as error:
        if is_transient(error):
            raise
        if getattr(error, "code", None) not in DOCUMENT_FAULTS:
            raise StoreUnavailable(f"{type(error).__name__}: {error}") from None
        return Inserted({index: f"{type(error).__name__}: {error}" for index in range(len(documents))})
    return Inserted()


def _unencodable(documents: list[dict]) -> dict[int, str]:
    """{place: why} for each document BSON cannot encode (integers beyond 64 bits, lone surrogates, ...)."""
    refused = {}
    for index, document in enumerate(documents):
        try:
            size = len(bson.encode(document))
        except (BSONError, OverflowError, ValueError) as error:
            refused[index] = f"cannot be stored as BSON: {type(error).__name__}: {error}"
            continue
        if size > MAX_DOCUMENT_BYTES:
            refused[index] = f"document of {size} bytes exceeds the store's {MAX_DOCUMENT_BYTES}"
    return refused


def migrate_message_ids(database: Database, batch: int = 500) -> int:
    """Move messages stored under their message id alone to their sender's key, with their conversation; count them.

    Copy first, then delete the old document, so that an interrupted run loses nothing and a
    second run finishes it (a copy already there is a duplicate, which counts as done).
    """
    messages, moved = database[MESSAGES_COLLECTION], 0
    remaining = messages.find({"messageId": {"$exists": False}}, batch_size=batch)  # one pass over the collection
    while old := list(islice(remaining, batch)):
        copies = [{**document, "_id": message_key(document["from"], document["_id"]), "messageId": document["_id"],
                   "conversation": conversation_key(document["from"], document["to"])} for document in old]
        inserted = _insert_ignoring_duplicates(messages, copies)
        if inserted.refused:
            raise StoreUnavailable(f"could not move {len(inserted.refused)} messages: {inserted.refused}")
        messages.delete_many({"_id": {"$in": [document["_id"] for document in old]}})
        moved += len(old)
    return moved
