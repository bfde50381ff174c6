"""pymongo adapters: the idempotent message store and the failed-messages projection."""

from contextlib import contextmanager

import bson
from bson.errors import BSONError
from pymongo import ASCENDING, MongoClient
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import BulkWriteError, ConnectionFailure, ExecutionTimeout, PyMongoError, WTimeoutError

from shared_adapters.mongo_client import connect
from shared_domain.clock import utc_now
from shared_domain.documents import (FAILED_MESSAGES_COLLECTION, FAILED_RECORDS_COLLECTION, MESSAGES_COLLECTION,
                                     message_document, split_failure)
from shared_domain.failures import SourcePosition
from shared_domain.message import Message

from ..application.errors import StoreUnavailable

DUPLICATE_KEY = 11000
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
TRANSIENT_ERRORS = (ConnectionFailure, ExecutionTimeout, WTimeoutError)


def connect_for_operators(uri: str, timeout_ms: int) -> MongoClient:
    """A client for operator work, whose reads and writes may take up to two minutes.

    Operators change many records per request, which FerretDB's SQLite backend does one
    collection scan per record; an outage is still noticed after `timeout_ms`.
    """
    return connect(uri, timeout_ms, operation_timeout_ms=120_000)


def ensure_indexes(database: Database) -> None:
    """Create the indexes the queries of both services rely on."""
    messages = database[MESSAGES_COLLECTION]
    for field in ("to", "from"):
        messages.create_index([(field, ASCENDING), ("sentAt", ASCENDING), ("_id", ASCENDING)])
    messages.create_index([("sentAt", ASCENDING), ("_id", ASCENDING)])
    # Live delivery: where a client's stream stands, and what it missed, by source offset.
    messages.create_index([("to", ASCENDING), ("source.offset", ASCENDING)])
    messages.create_index([("from", ASCENDING), ("to", ASCENDING), ("source.offset", ASCENDING)])
    failed = database[FAILED_MESSAGES_COLLECTION]
    failed.create_index([("failedAt", ASCENDING), ("_id", ASCENDING)])
    failed.create_index([("status", ASCENDING), ("failedAt", ASCENDING)])
    for field in ("to", "from", "errorType", "consumerClient"):
        failed.create_index([(field, ASCENDING), ("failedAt", ASCENDING), ("_id", ASCENDING)])
    # The chat's conversations and sessions (the producer's and the operator server's).
    database["read_markers"].create_index([("client", ASCENDING)])
    database["sessions"].create_index([("expiresAt", ASCENDING)])


class _IdempotentWriter:
    """Inserts documents keyed on _id into one collection; creates the indexes on first use."""

    def __init__(self, database: Database, collection: str):
        self._database = database
        self._collection: Collection = database[collection]
        self._indexed = False

    def _insert_new(self, documents: list[dict], collection: Collection | None = None) -> dict[str, str]:
        """Insert documents not there yet; return {_id: reason} for those refused for good."""
        if not documents:
            return {}
        with transient_as_unavailable():
            if not self._indexed:
                # Done on first use, so a service started while the store is down still runs.
                ensure_indexes(self._database)
                self._indexed = True
            return _insert_ignoring_duplicates(self._collection if collection is None else collection, documents)


class MongoMessageStore(_IdempotentWriter):
    """Stores messages under their message id; a message already there is left alone."""

    def __init__(self, database: Database, clock=utc_now):
        super().__init__(database, MESSAGES_COLLECTION)
        self._clock = clock

    def save_all(self, messages: list[tuple[Message, SourcePosition]]) -> dict[str, str]:
        """Insert every message not stored yet; return {message id: reason} for permanent refusals."""
        stored_at = self._clock()
        return self._insert_new([message_document(message, source, stored_at) for message, source in messages])


class MongoFailedMessageStore(_IdempotentWriter):
    """Keeps each failure as a summary and its raw record; a failure projected twice is stored once."""

    def __init__(self, database: Database):
        super().__init__(database, FAILED_MESSAGES_COLLECTION)
        self._records = database[FAILED_RECORDS_COLLECTION]

    def save_all(self, documents: list[dict]) -> dict[str, str]:
        """Insert failures not there yet; return {_id: reason} for those refused for good.

        The record goes first: a summary is only ever listed once what it describes is stored.
        """
        parts = [split_failure(document) for document in documents]
        refused = self._insert_new([record for _, record in parts], self._records)
        return refused | self._insert_new([summary for summary, _ in parts if str(summary["_id"]) not in refused])


def _insert_ignoring_duplicates(collection: Collection, documents: list[dict]) -> dict[str, str]:
    """insert_many(ordered=False), where an existing _id counts as success."""
    try:
        collection.insert_many(documents, ordered=False)
    except (BSONError, OverflowError, ValueError) as error:
        # Some document cannot be encoded at all: refuse those, insert the others (inserts are idempotent).
        unencodable = _unencodable(documents)
        if not unencodable:
            return {str(document["_id"]): f"{type(error).__name__}: {error}" for document in documents}
        encodable = [document for document in documents if str(document["_id"]) not in unencodable]
        return unencodable | (_insert_ignoring_duplicates(collection, encodable) if encodable else {})
    except BulkWriteError as error:
        if error.details.get("writeConcernErrors"):
            raise StoreUnavailable(f"write concern not met: {error.details['writeConcernErrors']}") from None
        return {
            str(documents[item["index"]]["_id"]): item.get("errmsg", "write refused")
            for item in error.details.get("writeErrors", [])
            if item.get("code") != DUPLICATE_KEY
        }
    except PyMongoError as error:
        if is_transient(error):
            raise
        reason = f"{type(error).__name__}: {error}"
        return {str(document["_id"]): reason for document in documents}
    return {}


def _unencodable(documents: list[dict]) -> dict[str, str]:
    """{_id: why} for each document BSON cannot encode (integers beyond 64 bits, lone surrogates, ...)."""
    refused = {}
    for document in documents:
        try:
            size = len(bson.encode(document))
        except (BSONError, OverflowError, ValueError) as error:
            refused[str(document["_id"])] = f"cannot be stored as BSON: {type(error).__name__}: {error}"
            continue
        if size > MAX_DOCUMENT_BYTES:
            refused[str(document["_id"])] = f"document of {size} bytes exceeds the store's {MAX_DOCUMENT_BYTES}"
    return refused


def is_transient(error: PyMongoError) -> bool:
    """Tell whether an error may go away by itself (connection loss, timeouts, failover)."""
    return isinstance(error, TRANSIENT_ERRORS) or error.has_error_label("RetryableWriteError")


@contextmanager
def transient_as_unavailable():
    """Turn transient pymongo errors into StoreUnavailable."""
    try:
        yield
    except PyMongoError as error:
        if is_transient(error):
            raise StoreUnavailable(f"{type(error).__name__}: {error}") from None
        raise
