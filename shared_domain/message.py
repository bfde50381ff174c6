"""The message sent from one client to another, and the rules it obeys."""

import re
import uuid
from dataclasses import dataclass
from datetime import datetime

CLIENT_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MESSAGE_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
# Control characters other than tab (\t) and newline (\n).
FORBIDDEN_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
DEFAULT_MAX_MESSAGE_LENGTH = 4096
ALL_CLIENTS = "*"


@dataclass(frozen=True)
class Message:
    """A validated message on its way from one client to another."""

    message_id: str
    sender: str
    recipient: str
    text: str
    sent_at: datetime


def new_message_id() -> str:
    """Generate a fresh message id."""
    return str(uuid.uuid4())


def client_id_problem(value: str) -> str | None:
    """Explain why a client id is invalid, or return None when it is fine."""
    if not CLIENT_ID_PATTERN.match(value):
        return "must be 1-64 characters of letters, digits, '_', '.' or '-'"
    return None


def message_id_problem(value: str) -> str | None:
    """Explain why a message id is invalid, or return None when it is fine."""
    if not MESSAGE_ID_PATTERN.match(value):
        return "must be 1-128 characters of letters, digits, '_', '.', ':' or '-'"
    return None


def text_problem(value: str, max_length: int) -> str | None:
    """Explain why message text is invalid, or return None when it is fine."""
    if not value.strip():
        return "must not be empty"
    if len(value) > max_length:
        return f"must be at most {max_length} characters"
    if FORBIDDEN_CONTROL_CHARS.search(value):
        return "must not contain control characters other than newline and tab"
    return None


def is_addressed_to(recipient: str, client: str) -> bool:
    """Tell whether a consumer for `client` ('*' for all) keeps a message for `recipient`."""
    return client == ALL_CLIENTS or recipient == client
