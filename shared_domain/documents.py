"""Shapes of the MongoDB documents: written by the consumer, read by the producer's API."""

import base64
from datetime import datetime

from .clock import as_utc, to_iso
from .failures import SourcePosition
from .message import Message
from .stored_events import StoredEvent, stored_event

# The database both services use unless MONGODB_DATABASE names another.
DEFAULT_DATABASE = "messaging"
MESSAGES_COLLECTION = "messages"
FAILED_MESSAGES_COLLECTION = "failed_messages"
# The raw record of each failure lives apart from its summary, so listings never load payloads.
FAILED_RECORDS_COLLECTION = "failed_message_records"
# Per (client, partner): up to when, and how many of the partner's messages, the client has read.
READ_MARKERS_COLLECTION = "read_markers"
RECORD_FIELDS = ("key", "keyEncoding", "payload", "payloadEncoding", "headers", "deadLetter")


def message_document(message: Message, source: SourcePosition, stored_at: datetime) -> dict:
    """Build the stored document of a message, under its sender and message id."""
    return {
        "_id": message.key,
        "messageId": message.message_id,
        "from": message.sender,
        "to": message.recipient,
        "conversation": message.conversation,
        "message": message.text,
        "sentAt": message.sent_at,
        "storedAt": stored_at,
        "source": position_view(source),
    }


def stored_event_of(document: dict) -> StoredEvent:
    """The stored event a stored message document stands for."""
    source = document["source"]
    return stored_event(message_id_of(document), document["from"], document["to"], document["message"],
                        as_utc(document["sentAt"]), SourcePosition(source["topic"], source["partition"], source["offset"]))


def message_view(document: dict) -> dict:
    """Turn a stored message document into its API representation."""
    return {
        "messageId": message_id_of(document),
        "from": document["from"],
        "to": document["to"],
        "message": document["message"],
        "sentAt": to_iso(document["sentAt"]),
    }


def message_id_of(document: dict) -> str:
    """The message id of a stored message; documents stored before ids were per sender hold it as their _id."""
    return document.get("messageId", document["_id"])


def position_view(source: SourcePosition) -> dict:
    """Represent a Kafka position as a document or API object."""
    return {"topic": source.topic, "partition": source.partition, "offset": source.offset}


def bytes_view(data: bytes | None) -> tuple[str | None, str]:
    """Represent raw bytes as text when they are UTF-8, else as base64; return (text, encoding)."""
    if data is None:
        return None, "none"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64_view(data)


def base64_view(data: bytes | None) -> tuple[str | None, str]:
    """Represent raw bytes as base64 whatever they hold; return (text, encoding)."""
    if data is None:
        return None, "none"
    return base64.b64encode(data).decode("ascii"), "base64"


def storable_text(text: str) -> str:
    """The text with what UTF-8 cannot hold (lone surrogates, e.g. quoted from hostile input) escaped."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def bytes_from_view(text: str | None, encoding: str) -> bytes | None:
    """Restore raw bytes from their text representation."""
    if encoding == "none" or text is None:
        return None
    if encoding == "base64":
        return base64.b64decode(text)
    return text.encode("utf-8")


def split_failure(document: dict) -> tuple[dict, dict]:
    """Split a failure document into its summary and its raw record, both under the failure's id."""
    summary = {name: value for name, value in document.items() if name not in RECORD_FIELDS}
    record = {name: document[name] for name in ("_id", *RECORD_FIELDS) if name in document}
    return summary, record


def failure_summary_view(document: dict) -> dict:
    """What a listing shows of a failure: why, when, where from, what operators did; no key, payload or headers."""
    view = {
        "id": document["_id"],
        "status": document["status"],
        "reason": document["reason"],
        "errorType": document["errorType"],
        "attempts": document["attempts"],
        "failedAt": to_iso(document["failedAt"]),
        "consumerClient": document["consumerClient"],
        "source": document["source"],
        "replayCount": document.get("replayCount", 0),
        "history": [_history_view(entry) for entry in document.get("history", [])],
    }
    for field in ("messageId", "from", "to", "traceId", "previousFailureId", "truncated", "suspect"):
        if field in document:
            view[field] = document[field]
    return view


def failure_view(document: dict) -> dict:
    """Turn a whole failure (summary and record) into its API representation."""
    return {
        **failure_summary_view(document),
        "key": document.get("key"),
        "payload": document.get("payload"),
        "payloadEncoding": document.get("payloadEncoding"),
        "headers": document.get("headers", []),
        "deadLetter": document.get("deadLetter"),
    }


def _history_view(entry: dict) -> dict:
    """Represent one status change with its time as ISO 8601."""
    return {name: to_iso(value) if isinstance(value, datetime) else value for name, value in entry.items()}
