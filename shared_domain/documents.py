"""Shapes of the MongoDB documents of messages (written by the consumer, read by the producer's API); raw bytes as text."""

import base64
from datetime import datetime

from .clock import as_utc, to_iso
from .failures import SourcePosition
from .message import Message
from .stored_events import StoredEvent, stored_event

# The database both services use unless MONGODB_DATABASE names another.
DEFAULT_DATABASE = "messaging"
MESSAGES_COLLECTION = "messages"
# Per (client, partner): up to when, and how many of the partner's messages, the client has read.
READ_MARKERS_COLLECTION = "read_markers"


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
