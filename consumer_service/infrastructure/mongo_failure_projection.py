"""The dead-letter topic's projection into the store: each dead letter as a failure document, stored once."""

import re
from datetime import datetime

from pymongo.database import Database

from shared_domain import failed_messages as fm
from shared_domain.clock import parse_iso, utc_now
from shared_domain.documents import base64_view, bytes_view, position_view, storable_text
from shared_domain.envelope import PoisonRecord, decode
from shared_domain.failures import SourcePosition

from ..application.records import Headers, IncomingRecord
from . import kafka_dead_letters as k
from .mongo_store import IdempotentWriter

UNPROJECTABLE = "UnprojectableDeadLetter"
# Counts and positions in headers: at most 18 ASCII digits, so they always fit a 64-bit integer.
_HEADER_NUMBER = re.compile(r"[0-9]{1,18}")


class MongoFailedMessageStore(IdempotentWriter):
    """Keeps each failure as a summary and its raw record; a failure projected twice is stored once."""

    def __init__(self, database: Database):
        super().__init__(database, fm.FAILED_MESSAGES_COLLECTION)
        self._records = database[fm.FAILED_RECORDS_COLLECTION]

    @staticmethod
    def document_of(dlq_record: IncomingRecord) -> dict:
        """The failure document of a dead letter; raises when it cannot be read."""
        return failure_document(dlq_record)

    @staticmethod
    def unprojectable_document(dlq_record: IncomingRecord, problem: str) -> dict:
        """The document of a dead letter that cannot be read or stored, with its raw key and value."""
        return unprojectable_document(dlq_record, problem)

    def save_all(self, documents: list[dict]) -> dict[str, str]:
        """Insert failures not there yet; return {_id: reason} for those refused for good.

        The record goes first: a summary is only ever listed once what it describes is stored.
        """
        parts = [fm.split_failure(document) for document in documents]
        records = [record for _, record in parts]
        refused = _by_id(records, self._insert_new(records, self._records).refused)
        summaries = [summary for summary, _ in parts if str(summary["_id"]) not in refused]
        return refused | _by_id(summaries, self._insert_new(summaries).refused)


def _by_id(documents: list[dict], by_index: dict[int, str]) -> dict[str, str]:
    """Refusals by each document's _id."""
    return {str(documents[index]["_id"]): reason for index, reason in by_index.items()}


def failure_document(dlq_record: IncomingRecord, projected_at: datetime | None = None) -> dict:
    """Project a record of the dead-letter topic into a `failed_messages` document."""
    context = _context_headers(dlq_record.headers)
    source = SourcePosition(
        topic=context.get(k.ORIGINAL_TOPIC_HEADER, "unknown"),
        partition=header_number(context.get(k.ORIGINAL_PARTITION_HEADER), -1),
        offset=header_number(context.get(k.ORIGINAL_OFFSET_HEADER), -1),
    )
    consumer_client = context.get(k.CONSUMER_CLIENT_HEADER, "unknown")
    payload, encoding = bytes_view(dlq_record.value)
    key, key_encoding = bytes_view(dlq_record.key)
    document = {
        "_id": fm.failure_id(source, consumer_client),
        "status": fm.STATUS_FAILED,
        "reason": context.get(k.REASON_HEADER, "unknown"),
        "errorType": context.get(k.ERROR_TYPE_HEADER, "unknown"),
        "attempts": header_number(context.get(k.ATTEMPTS_HEADER), 0),
        "failedAt": _time(context.get(k.FAILED_AT_HEADER)) or projected_at or utc_now(),
        "consumerClient": consumer_client,
        "source": position_view(source),
        "deadLetter": position_view(dlq_record.position),
        "key": key,
        "keyEncoding": key_encoding,
        "payload": payload,
        "payloadEncoding": encoding,
        "headers": [_header_view(name, value) for name, value in dlq_record.headers if name not in k.CONTEXT_HEADERS],
        "replayCount": header_number(context.get(fm.REPLAY_COUNT_HEADER), 0),
        "history": [],
    }
    for field, header in (("previousFailureId", fm.REPLAY_OF_HEADER), ("truncated", k.TRUNCATED_HEADER)):
        if context.get(header):
            document[field] = context[header]
    if dlq_record.trace_id:
        document["traceId"] = dlq_record.trace_id
    document.update(_message_fields(dlq_record.value))
    return document


def unprojectable_document(dlq_record: IncomingRecord, problem: str, projected_at: datetime | None = None) -> dict:
    """A dead letter the projection cannot read or store, kept by its own position with its raw key and value."""
    position = dlq_record.position
    key, key_encoding = base64_view(dlq_record.key)
    payload, encoding = base64_view(dlq_record.value)
    return {
        "_id": fm.failure_id(position, "unprojectable"),
        "status": fm.STATUS_FAILED,
        "reason": storable_text(f"the dead letter could not be projected ({problem})")[:fm.MAX_REASON_LENGTH],
        "errorType": UNPROJECTABLE,
        "attempts": 0,
        "failedAt": projected_at or utc_now(),
        "consumerClient": "unknown",
        "source": position_view(SourcePosition("unknown", -1, -1)),
        "deadLetter": position_view(position),
        "key": key,
        "keyEncoding": key_encoding,
        "payload": payload,
        "payloadEncoding": encoding,
        "headers": [],
        "replayCount": 0,
        "history": [],
    }


def header_number(text: str | None, default: int) -> int:
    """A count or position from a header: ASCII digits that fit 64 bits, else `default`."""
    return int(text) if text is not None and _HEADER_NUMBER.fullmatch(text) else default


def _context_headers(headers: Headers) -> dict[str, str]:
    """Decode the headers into a dict of text; later values win."""
    return {name: (value or b"").decode("utf-8", errors="replace") for name, value in headers}


def _message_fields(value: bytes | None) -> dict:
    """The message's own fields when the payload still decodes (e.g. it failed in the store)."""
    try:
        message = decode(value, max_length=10**9)
    except PoisonRecord:
        return {}
    return {"messageId": message.message_id, "from": message.sender, "to": message.recipient, "sentAt": message.sent_at}


def _header_view(name: str, value: bytes | None) -> dict:
    """Represent one original header for the document."""
    text, encoding = bytes_view(value)
    return {"name": name, "value": text, "encoding": encoding}


def _time(text: str | None) -> datetime | None:
    """Parse a timestamp header, or None when it is missing or malformed."""
    try:
        return parse_iso(text) if text else None
    except ValueError:
        return None
