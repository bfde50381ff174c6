"""Browser sessions: what a signed-in page holds instead of a bearer token."""

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


def new_secret() -> str:
    """A fresh random secret: a session id (the cookie's value, stored only as its hash) or a CSRF token."""
    return secrets.token_urlsafe(SESSION_BYTES)


class Sessions(Protocol):
    """Where sessions live, shared by every process of a service."""

    def start(self, session: Session) -> str:
        """Store a session and return its id (the cookie's value)."""

    def find(self, session_id: str) -> Session | None:
        """The live session of an id, or None when it is unknown, ended or expired."""

    def end(self, session_id: str) -> None:
        """End a session (sign-out)."""
