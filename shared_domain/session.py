"""Browser sessions: what a signed-in page holds instead of a bearer token."""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

SESSION_BYTES = 32


@dataclass(frozen=True)
class Session:
    """A signed-in principal, the token it signed in with (by hash), and the CSRF token its page sends back."""

    role: str
    name: str
    token_hash: str
    csrf_token: str
    expires_at: datetime


def new_session_id() -> str:
    """A fresh session id: the cookie's value, never stored as is."""
    return secrets.token_urlsafe(SESSION_BYTES)


def new_csrf_token() -> str:
    """A fresh CSRF token for one session."""
    return secrets.token_urlsafe(SESSION_BYTES)


def session_key(session_id: str) -> str:
    """What is stored of a session id: its SHA-256, so a read of the store cannot be replayed as a cookie."""
    return hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).hexdigest()


class Sessions(Protocol):
    """Where sessions live, shared by every process of a service."""

    def start(self, session: Session) -> str:
        """Store a session and return its id (the cookie's value)."""

    def find(self, session_id: str) -> Session | None:
        """The live session of an id, or None when it is unknown, ended or expired."""

    def end(self, session_id: str) -> None:
        """End a session (sign-out)."""
