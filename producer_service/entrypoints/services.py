"""The adapters a Flask app is wired with, kept on `app.extensions`."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from flask import current_app

from consumer_service.application.dlq_operations import Operations

from ..application.identity import Identities
from ..application.live import History, Hub
from ..application.ports import Publisher, Reader
from ..config import ProducerSettings

EXTENSION = "messaging"


class RateLimiter(Protocol):
    """Counts hits per key in fixed windows, across every process of the service."""

    def hit(self, key: str, limit: int, window_s: int, cost: int = 1) -> float | None:
        """Count `cost` hits; None while within the limit, else the seconds until the window ends."""


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
    operations: Operations | None = None
    live: "Live | None" = None
    close: Callable[[], None] = lambda: None


@dataclass
class Live:
    """What GET /stream needs: the process's hub, the feed that fills it, and the store's history."""

    hub: Hub
    history: History
    start_feed: Callable[[], None]


def services() -> Services:
    """The services of the app handling the current request."""
    return current_app.extensions[EXTENSION]
