"""Dependency state as the consumer sees it: one log line when a dependency goes down, one when it is back."""

import logging
import threading
import time

log = logging.getLogger("consumer_service")


class DependencyState:
    """Whether one dependency (Kafka, MongoDB) currently answers, shared by every loop of the process."""

    def __init__(self, name: str):
        self.name = name
        self._lock = threading.Lock()
        self._down_since: float | None = None

    def down(self, error: object) -> None:
        """Note a failure; logs only when this starts a wait."""
        with self._lock:
            if self._down_since is not None:
                return
            self._down_since = time.monotonic()
        log.warning("waiting for %s: %.300s", self.name, error)

    def up(self) -> None:
        """Note a success; logs only when this ends a wait."""
        with self._lock:
            if self._down_since is None:
                return
            waited, self._down_since = time.monotonic() - self._down_since, None
        log.warning("%s recovered after %.1fs", self.name, waited)

    @property
    def is_down(self) -> bool:
        """Tell whether the last thing heard from the dependency was a failure."""
        return self._down_since is not None


class Backoff:
    """Exponential waits between retries of a failed batch, cut short when the service stops."""

    def __init__(self, stop: threading.Event, first: float = 0.5, cap: float = 10.0):
        self._stop, self._first, self._cap = stop, first, cap
        self._delay = 0.0

    def wait(self) -> None:
        """Wait the next, longer delay (returns early on stop)."""
        self._delay = min(self._cap, self._delay * 2 or self._first)
        self._stop.wait(self._delay)

    def reset(self) -> None:
        """Start again from the first delay."""
        self._delay = 0.0
