"""Use case helpers: a dead letter as a Kafka record, and a dead-letter record as a document."""

from datetime import datetime

from shared_domain import failures as f
from shared_domain.clock import parse_iso, to_iso, utc_now
from shared_domain.documents import bytes_view, position_view
from shared_domain.envelope import PoisonRecord, decode
from shared_domain.failures import SourcePosition, failure_id

from .records import DeadLetter, Headers, IncomingRecord, OutgoingRecord


def dead_letter_record(letter: DeadLetter) -> OutgoingRecord:
    """Keep the original key, value and headers, and add the failure's context headers."""
    record, failure = letter.record, letter.failure
    original = [(name, value) for name, value in record.headers if not f.is_context_header(name)]
    context = {
        f.REASON_HEADER: failure.reason,
        f.ERROR_TYPE_HEADER: failure.error_type,
        f.ATTEMPTS_HEADER: str(failure.attempts),
        f.FAILED_AT_HEADER: to_iso(failure.failed_at),
        f.ORIGINAL_TOPIC_HEADER: record.topic,
        f.ORIGINAL_PARTITION_HEADER: str(record.partition),
        f.ORIGINAL_OFFSET_HEADER: str(record.offset),
        f.CONSUMER_CLIENT_HEADER: letter.consumer_client,
    }
    return OutgoingRecord(
        key=record.key,
        value=record.value,
        headers=original + [(name, value.encode("utf-8")) for name, value in context.items()],
    )


def failure_document(dlq_record: IncomingRecord, projected_at: datetime | None = None) -> dict:
    """Project a record of the dead-letter topic into a `failed_messages` document."""
    context = _context_headers(dlq_record.headers)
    source = SourcePosition(
        topic=context.get(f.ORIGINAL_TOPIC_HEADER, "unknown"),
        partition=_int(context.get(f.ORIGINAL_PARTITION_HEADER), -1),
        offset=_int(context.get(f.ORIGINAL_OFFSET_HEADER), -1),
    )
    consumer_client = context.get(f.CONSUMER_CLIENT_HEADER, "unknown")
    payload, encoding = bytes_view(dlq_record.value)
    key, key_encoding = bytes_view(dlq_record.key)
    document = {
        "_id": failure_id(source, consumer_client),
        "status": f.STATUS_FAILED,
        "reason": context.get(f.REASON_HEADER, "unknown"),
        "errorType": context.get(f.ERROR_TYPE_HEADER, "unknown"),
        "attempts": _int(context.get(f.ATTEMPTS_HEADER), 0),
        "failedAt": _time(context.get(f.FAILED_AT_HEADER)) or projected_at or utc_now(),
        "consumerClient": consumer_client,
        "source": position_view(source),
        "deadLetter": position_view(dlq_record.position),
        "key": key,
        "keyEncoding": key_encoding,
        "payload": payload,
        "payloadEncoding": encoding,
        "headers": [_header_view(name, value) for name, value in dlq_record.headers if not f.is_context_header(name)],
        "replayCount": _int(context.get(f.REPLAY_COUNT_HEADER), 0),
        "history": [],
    }
    if context.get(f.REPLAY_OF_HEADER):
        document["previousFailureId"] = context[f.REPLAY_OF_HEADER]
    document.update(_message_fields(dlq_record.value))
    return document


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


def _int(text: str | None, default: int) -> int:
    """Parse an integer header, falling back to `default`."""
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default


def _time(text: str | None) -> datetime | None:
    """Parse a timestamp header, or None when it is missing or malformed."""
    try:
        return parse_iso(text) if text else None
    except ValueError:
        return None
