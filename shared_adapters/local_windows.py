"""Counts per key in fixed one-minute windows, in this process's memory: no store to wait for, or to lose."""

import threading
import time
from collections.abc import Callable

WINDOW_S = 60
MAX_KEYS = 100_000
# Beyond MAX_KEYS keys in one window, further keys share this one count, so memory stays bounded.
OVERFLOW_KEY = "\x00overflow"


class LocalWindows:
    """Hits per key in the current window of this process; a dictionary lookup to check, one to count."""

    def __init__(self, window_s: int = WINDOW_S, max_keys: int = MAX_KEYS, clock: Callable[[], float] = time.monotonic):
        self._window_s, self._max_keys, self._clock = window_s, max_keys, clock
        self._lock = threading.Lock()
        self._window = -1
        self._counts: dict[str, int] = {}

    def over(self, key: str, limit: int) -> float | None:
        """Seconds until the window ends when `key` has used up `limit`; None while it has not."""
        with self._lock:
            now = self._roll()
            return self._wait(now) if self._counts.get(self._slot(key), 0) >= limit else None

    def hit(self, key: str, limit: int, cost: int = 1) -> float | None:
        """Count `cost` hits unless that would pass `limit`; None when counted, else the seconds until the window ends."""
        with self._lock:
            now = self._roll()
            slot = self._slot(key)
            if self._counts.get(slot, 0) + cost > limit:
                return self._wait(now)
            self._counts[slot] = self._counts.get(slot, 0) + cost
            return None

    def _roll(self) -> float:
        """Start a new window when the current one has ended (the caller holds the lock); return the time."""
        now = self._clock()
        window = int(now // self._window_s)
        if window != self._window:
            self._window, self._counts = window, {}
        return now

    def _slot(self, key: str) -> str:
        """Where a key is counted: its own slot while there is room (the caller holds the lock)."""
        return key if key in self._counts or len(self._counts) < self._max_keys else OVERFLOW_KEY

    def _wait(self, now: float) -> float:
        """Seconds until the current window ends."""
        return max((self._window + 1) * self._window_s - now, 0.001)
