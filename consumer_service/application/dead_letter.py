"""Use case helpers: a dead letter as a Kafka record, and a dead-letter record as a document."""

from datetime import datetime

from shared_domain import failures as f
from shared_domain.clock import parse_iso, to_iso, utc_now
from shared_domain.documents import base64_view, bytes_view, position_view, storable_text
from shared_domain.envelope import PoisonRecord, decode
from shared_domain.failures import SourcePosition, failure_id, header_number

from .records import DeadLetter, Headers, IncomingRecord, OutgoingRecord

UNPROJECTABLE = "UnprojectableDeadLetter"


def dead_letter_record(letter: DeadLetter) -> OutgoingRecord:
    """Keep the original key, value and headers, and add the failure's context headers."""
    record = letter.record
    original = [(name, value) for name, value in record.headers if not f.is_context_header(name)]
    return OutgoingRecord(key=record.key, value=record.value, headers=original + _context_of(letter))


def truncated_dead_letter_record(letter: DeadLetter, keep_bytes: int) -> OutgoingRecord:
    """A dead letter for a record too large for the dead-letter topic: its context and the first bytes of it.

    The original headers are dropped and key and value cut to `keep_bytes`; `dlq.truncated`
    says what was cut, and the context headers say where the whole record still is.
    """
    record = letter.record
    header_bytes = sum(len(name) + len(value or b"") for name, value in record.headers)
    note = (f"value of {len(record.value or b'')} bytes and key of {len(record.key or b'')} bytes cut to {keep_bytes}; "
            f"{len(record.headers)} original header(s) of {header_bytes} bytes dropped")
    return OutgoingRecord(
        key=None if record.key is None else record.key[:keep_bytes],
        value=None if record.value is None else record.value[:keep_bytes],
        headers=_context_of(letter) + [(f.TRUNCATED_HEADER, note.encode())],
    )


def _context_of(letter: DeadLetter) -> Headers:
    """The context headers of a dead letter: why, when, and where the record came from."""
    record, failure = letter.record, letter.failure
    context = {
        f.REASON_HEADER: failure.reason[:f.MAX_REASON_LENGTH],
        f.ERROR_TYPE_HEADER: failure.error_type,
        f.ATTEMPTS_HEADER: str(failure.attempts),
        f.FAILED_AT_HEADER: to_iso(failure.failed_at),
        f.ORIGINAL_TOPIC_HEADER: record.topic,
        f.ORIGINAL_PARTITION_HEADER: str(record.partition),
        f.ORIGINAL_OFFSET_HEADER: str(record.offset),
        f.CONSUMER_CLIENT_HEADER: letter.consumer_client,
    }
    return [(name, storable_text(value).encode()) for name, value in context.items()]


def failure_document(dlq_record: IncomingRecord, projected_at: datetime | None = None) -> dict:
    """Project a record of the dead-letter topic into a `failed_messages` document."""
    context = _context_headers(dlq_record.headers)
    source = SourcePosition(
        topic=context.get(f.ORIGINAL_TOPIC_HEADER, "unknown"),
        partition=header_number(context.get(f.ORIGINAL_PARTITION_HEADER), -1),
        offset=header_number(context.get(f.ORIGINAL_OFFSET_HEADER), -1),
    )
    consumer_client = context.get(f.CONSUMER_CLIENT_HEADER, "unknown")
    payload, encoding = bytes_view(dlq_record.value)
    key, key_encoding = bytes_view(dlq_record.key)
    document = {
        "_id": failure_id(source, consumer_client),
        "status": f.STATUS_FAILED,
        "reason": context.get(f.REASON_HEADER, "unknown"),
        "errorType": context.get(f.ERROR_TYPE_HEADER, "unknown"),
        "attempts": header_number(context.get(f.ATTEMPTS_HEADER), 0),
        "failedAt": _time(context.get(f.FAILED_AT_HEADER)) or projected_at or utc_now(),
        "consumerClient": consumer_client,
        "source": position_view(source),
        "deadLetter": position_view(dlq_record.position),
        "key": key,
        "keyEncoding": key_encoding,
        "payload": payload,
        "payloadEncoding": encoding,
        "headers": [_header_view(name, value) for name, value in dlq_record.headers if name not in f.CONTEXT_HEADERS],
        "replayCount": header_number(context.get(f.REPLAY_COUNT_HEADER), 0),
        "history": [],
    }
    for field, header in (("previousFailureId", f.REPLAY_OF_HEADER), ("truncated", f.TRUNCATED_HEADER)):
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
        "_id": failure_id(position, "unprojectable"),
        "status": f.STATUS_FAILED,
        "reason": storable_text(f"the dead letter could not be projected ({problem})")[:f.MAX_REASON_LENGTH],
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
