"""Encoding a message into a Kafka record value and decoding it back."""

import functools
import json
from dataclasses import dataclass

from marshmallow import ValidationError

from .clock import to_iso
from .json_text import MalformedJson, compact_json, loads
from .message import DEFAULT_MAX_MESSAGE_LENGTH, Message
from .random_ids import random_hex
from .schemas import ENVELOPE_SCHEMA_VERSION, EnvelopeSchema

CONTENT_TYPE = "application/json"
CONTENT_TYPE_HEADER = "content-type"
TRACE_ID_HEADER = "trace-id"
MAX_TRACE_ID_LENGTH = 128
# The fields of envelope version 1; any other field is one a newer producer added (docs/wire-format.md).
ENVELOPE_FIELDS = frozenset({"schemaVersion", "messageId", "from", "to", "message", "sentAt"})


class PoisonRecord(Exception):
    """A record that can never be stored, whatever is retried."""


class UndecodableRecord(PoisonRecord):
    """The record value is not a UTF-8 JSON object."""


class SchemaViolation(PoisonRecord):
    """The record is JSON but not a valid message envelope."""

    def __init__(self, errors: dict, recipient_hint: str | None = None):
        super().__init__(f"envelope fails validation: {json.dumps(errors, sort_keys=True)}")
        self.errors = errors
        self.recipient_hint = recipient_hint


class UnsupportedSchemaVersion(SchemaViolation):
    """The envelope is of a newer major version than this reader's: kept to be replayed once consumers are upgraded."""

    def __init__(self, recipient_hint: str | None = None):
        super().__init__({"schemaVersion": [f"is a major version newer than {ENVELOPE_SCHEMA_VERSION}, the one this "
                                            "consumer reads: replay it once the consumers are upgraded"]},
                         recipient_hint)


@dataclass(frozen=True)
class Envelope:
    """A decoded envelope: its message, and the names of the fields this version does not know (ignored)."""

    message: Message
    unknown_fields: tuple[str, ...] = ()


def encode(message: Message) -> bytes:
    """Encode a message as the JSON envelope written to Kafka."""
    envelope = {
        "schemaVersion": ENVELOPE_SCHEMA_VERSION,
        "messageId": message.message_id,
        "from": message.sender,
        "to": message.recipient,
        "message": message.text,
        "sentAt": to_iso(message.sent_at),
    }
    return compact_json(envelope).encode("utf-8")


@functools.cache
def envelope_schema(max_length: int) -> EnvelopeSchema:
    """The envelope schema for a length limit, built once: building one costs more than loading with it."""
    return EnvelopeSchema(max_length=max_length)


def decode(value: bytes | None, max_length: int = DEFAULT_MAX_MESSAGE_LENGTH) -> Message:
    """Decode a Kafka record value into a message, or raise a PoisonRecord."""
    return read_envelope(value, max_length).message


def read_envelope(value: bytes | None, max_length: int = DEFAULT_MAX_MESSAGE_LENGTH) -> Envelope:
    """Decode a Kafka record value into its message and the fields it carries that this version ignores."""
    if value is None:
        raise UndecodableRecord("record has no value")
    try:
        document = loads(value)
    except MalformedJson as error:
        raise UndecodableRecord(f"value is {error}") from None
    if not isinstance(document, dict):
        raise UndecodableRecord(f"value is JSON {type(document).__name__}, not an object")
    if _is_newer_major(document.get("schemaVersion")):
        raise UnsupportedSchemaVersion(recipient_hint=_recipient_hint(document))
    try:
        fields = envelope_schema(max_length).load_one(document)
    except ValidationError as error:
        raise SchemaViolation(error.normalized_messages(), recipient_hint=_recipient_hint(document)) from None
    message = Message(message_id=fields["message_id"], sender=fields["sender"], recipient=fields["recipient"],
                      text=fields["text"], sent_at=fields["sent_at"])
    return Envelope(message, tuple(name for name in document if name not in ENVELOPE_FIELDS))


def _recipient_hint(document: dict) -> str | None:
    """The envelope's `to` when it is text, to tell whose consumer keeps a poison record."""
    return document.get("to") if isinstance(document.get("to"), str) else None


def _is_newer_major(version: object) -> bool:
    """Tell whether a schemaVersion names a major version after this reader's: an integer above it."""
    return type(version) is int and version > ENVELOPE_SCHEMA_VERSION


def new_trace_id() -> str:
    """A trace id for a request or record that came without a usable one: 32 random hexadecimal digits."""
    return random_hex(16)


def usable_trace_id(value: str | bytes | None) -> str | None:
    """A trace id as given (X-Request-Id, a record's trace-id header) when it is short printable ASCII, else None."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if value and len(value) <= MAX_TRACE_ID_LENGTH and value.isascii() and value.isprintable():
        return value
    return None
