"""The "stored" event: written by a consumer once a message is in the store, read by whatever pushes it live."""

import json
from dataclasses import dataclass

from .clock import parse_iso, to_iso
from .failures import SourcePosition
from .message import ClientId, Message, MessageId, MessageText

STORED_EVENT_VERSION = 1


@dataclass(frozen=True)
class StoredEvent:
    """A message as stored, with where its record sits in the message topic."""

    message: Message
    source: SourcePosition


def encode_stored_event(message: Message, source: SourcePosition) -> bytes:
    """The compact JSON value of a stored event."""
    return json.dumps({
        "v": STORED_EVENT_VERSION,
        "messageId": message.message_id,
        "from": message.sender,
        "to": message.recipient,
        "message": message.text,
        "sentAt": to_iso(message.sent_at),
        "source": [source.topic, source.partition, source.offset],
    }, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def decode_stored_event(value: bytes) -> StoredEvent:
    """Read a stored event written by encode_stored_event; ValueError (or KeyError, TypeError) otherwise."""
    document = json.loads(value)
    if document.get("v") != STORED_EVENT_VERSION:
        raise ValueError(f"unknown stored event version {document.get('v')!r}")
    topic, partition, offset = document["source"]
    message = Message(message_id=MessageId(document["messageId"]), sender=ClientId(document["from"]),
                      recipient=ClientId(document["to"]), text=MessageText(document["message"], max_length=10**9),
                      sent_at=parse_iso(document["sentAt"]))
    return StoredEvent(message, SourcePosition(topic, int(partition), int(offset)))
