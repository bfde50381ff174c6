"""The adapters a Flask app is wired with, kept on `app.extensions`."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from flask import current_app

from shared_adapters.access import RateLimiter
from shared_domain.identity import Identities
from shared_domain.session import Sessions

from ..application.live import History, Hub
from ..application.ports import Publisher, Reader
from ..config import ProducerSettings

EXTENSION = "messaging"


@dataclass
class Services:
    """Publisher, readers and dependency checks of one producer process."""

    settings: ProducerSettings
    publisher: Publisher
    messages: Reader
    failures: Reader
    checks: dict[str, Callable[[], bool]]
    identities: Identities
    limiter: RateLimiter
    sessions: Sessions
    conversations: "Conversations"
    live: "Live | None" = None
    close: Callable[[], None] = lambda: None


class Conversations(Protocol):
    """A client's conversations and what it has read of them."""

    def summaries(self, client: str) -> list[dict]:
        """Every conversation of the client (`with`, `latest`, `unread`), latest first."""

    def mark_read(self, client: str, partner: str, up_to: datetime) -> None:
        """Remember that the client read its conversation with `partner` up to a moment."""


@dataclass
class Live:
    """What GET /stream needs: the process's hub, the feed that fills it, and the store's history."""

    hub: Hub
    history: History
    start_feed: Callable[[], None]
    feed_read: Callable[[], dict[int, int]] = dict  # by stored-events partition, the offset the feed reads next


def services() -> Services:
    """The services of the app handling the current request."""
    return current_app.extensions[EXTENSION]
