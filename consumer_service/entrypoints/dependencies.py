"""Dependency state as the consumer sees it: one log line when a dependency goes down, one when it is back; probes
to notice recovery; backoff between retries."""

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger("consumer_service")
PROBE_INTERVAL = 2.0


class DependencyState:
    """Whether one dependency (Kafka, MongoDB) currently answers, shared by every loop of the process.

    A failure reported within FLAP_S of a recovery (librdkafka may still deliver a stale 'all
    brokers down' just after the first success) is noted quietly, and logged only if the
    dependency is still failing FLAP_S later; a flap thus adds no lines.
    """

    FLAP_S = 2.0

    def __init__(self, name: str, clock=time.monotonic):
        self.name = name
        self._clock = clock
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._recovered_at: float | None = None
        self._announced = False

    def down(self, error: object) -> None:
        """Note a failure; logs only when this starts (or, after a flap, confirms) a wait."""
        now = self._clock()
        with self._lock:
            if self._down_since is None:  # a new wait: announced at once, unless it follows a recovery closely
                self._down_since = now
                announce = self._announced = self._recovered_at is None or now - self._recovered_at >= self.FLAP_S
            else:  # still waiting: announced once a quiet wait has lasted
                announce = not self._announced and now - self._down_since >= self.FLAP_S
                self._announced = self._announced or announce
        if announce:
            log.warning("waiting for %s: %.300s", self.name, error)

    def up(self) -> None:
        """Note a success; logs only when this ends a wait that was logged."""
        now = self._clock()
        with self._lock:
            if self._down_since is None:
                return
            waited, announced = now - self._down_since, self._announced
            self._down_since, self._recovered_at = None, now
        if announced:
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


@dataclass
class Dependencies:
    """The states of Kafka and MongoDB, shared by the loops of one process, with probes to notice recovery."""

    kafka: DependencyState
    mongodb: DependencyState
    probes: dict = field(default_factory=dict)
    _last_probe: float = 0.0

    @classmethod
    def fresh(cls, kafka_probe: Callable[[], bool] | None = None, mongodb_probe: Callable[[], bool] | None = None):
        """Both dependencies presumed up; a probe, when given, is asked while its dependency is down."""
        kafka, mongodb = DependencyState("kafka"), DependencyState("mongodb")
        probes = {state: probe for state, probe in ((kafka, kafka_probe), (mongodb, mongodb_probe)) if probe}
        return cls(kafka, mongodb, probes)

    def probe_down(self) -> None:
        """Every PROBE_INTERVAL, ask each dependency that is down whether it answers again."""
        if time.monotonic() - self._last_probe < PROBE_INTERVAL:
            return
        self._last_probe = time.monotonic()
        for state, probe in self.probes.items():
            if state.is_down and probe():
                state.up()
