"""The "stored" event: written by a consumer once a message is in the store, read by whatever pushes it live."""

from dataclasses import dataclass

from .clock import parse_iso, to_iso
from .failures import SourcePosition
from .json_text import compact_json, loads
from .message import ClientId, Message, MessageId, MessageText

STORED_EVENT_VERSION = 1


@dataclass(frozen=True)
class StoredEvent:
    """A message as stored, with where its record sits in the message topic."""

    message: Message
    source: SourcePosition


def stored_event(message_id: str, sender: str, recipient: str, text: str, sent_at, source: SourcePosition) -> StoredEvent:
    """A stored message and where it came from; its text passed the length limit when it was sent, so none applies here."""
    message = Message(MessageId(message_id), ClientId(sender), ClientId(recipient), MessageText(text, max_length=10**9),
                      sent_at)
    return StoredEvent(message, source)


def encode_stored_event(message: Message, source: SourcePosition) -> bytes:
    """The compact JSON value of a stored event."""
    return compact_json({
        "v": STORED_EVENT_VERSION,
        "messageId": message.message_id,
        "from": message.sender,
        "to": message.recipient,
        "message": message.text,
        "sentAt": to_iso(message.sent_at),
        "source": [source.topic, source.partition, source.offset],
    }).encode("utf-8")


def decode_stored_event(value: bytes) -> StoredEvent:
    """Read a stored event of version 1, ignoring fields it does not know; ValueError (or KeyError, TypeError) otherwise."""
    document = loads(value)
    if not isinstance(document, dict):
        raise ValueError(f"a stored event is a JSON object, not {type(document).__name__}")
    version = document.get("v")
    if type(version) is not int or version != STORED_EVENT_VERSION:
        raise ValueError(f"unknown stored event version {str(version)[:20]!r}")
    topic, partition, offset = document["source"]
    return stored_event(document["messageId"], document["from"], document["to"], document["message"],
                        parse_iso(document["sentAt"]), SourcePosition(topic, int(partition), int(offset)))
