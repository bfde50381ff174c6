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

    One line when a wait starts, one when it is over. A wait is over once the dependency has
    answered for RECOVERY_S without a failure (a broker that restarts answers some requests before
    others): a failure meanwhile is the same wait going on, and adds no line. A failure only
    suspected (a client library's error event, which may be stale at any time: librdkafka reports
    '0/1 brokers are down') is noted quietly, and told once an operation or a probe fails too.
    """

    RECOVERY_S = 5.0

    def __init__(self, name: str, clock=time.monotonic):
        self.name = name
        self._clock = clock
        self._lock = threading.Lock()
        self._down_since: float | None = None  # a wait in progress
        self._back_since: float | None = None  # answering again since, the wait not yet over
        self._told = False  # whether this wait was logged
        self._suspicion: object = None  # what a suspected failure said, told once confirmed

    def down(self, error: object) -> None:
        """Note a failure; logs only when this starts (or confirms a suspected) wait."""
        with self._lock:
            self._back_since = None
            if self._down_since is None:
                self._down_since, self._told, self._suspicion = self._clock(), False, None
            tell, self._told = not self._told, True
            told = error if self._suspicion is None else self._suspicion
        if tell:
            log.warning("waiting for %s: %.300s", self.name, told)

    def suspect(self, error: object) -> None:
        """Note a failure nothing has confirmed yet: quiet, and told only once a failure confirms it."""
        with self._lock:
            self._back_since = None
            if self._down_since is None:
                self._down_since, self._told, self._suspicion = self._clock(), False, error

    def up(self, held: bool = False) -> None:
        """Note a success: a suspicion nothing confirmed is dropped; a wait that was told is over once this holds
        (`held`: the caller's one wait is over, told at once)."""
        with self._lock:
            if self._down_since is None or self._back_since is not None:
                return
            if not self._told:
                self._down_since = self._suspicion = None
                return
            self._back_since = self._clock()
        if held:
            self.settle(at_once=True)

    def settle(self, at_once: bool = False) -> None:
        """Log the end of a wait once the dependency has answered for RECOVERY_S (called regularly by the loops)."""
        with self._lock:
            if self._back_since is None or (not at_once and self._clock() - self._back_since < self.RECOVERY_S):
                return
            waited = self._back_since - self._down_since
            self._down_since = self._back_since = self._suspicion = None
        log.warning("%s recovered after %.1fs", self.name, waited)

    @property
    def is_down(self) -> bool:
        """Tell whether the last thing heard from the dependency was a failure."""
        return self._down_since is not None and self._back_since is None


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
        """Every PROBE_INTERVAL, ask each dependency that is down whether it answers again; log waits that are over."""
        for state in (self.kafka, self.mongodb):
            state.settle()
        if time.monotonic() - self._last_probe < PROBE_INTERVAL:
            return
        self._last_probe = time.monotonic()
        for state, probe in self.probes.items():
            if state.is_down:
                if probe():
                    state.up()
                else:
                    state.down("no answer to a probe")
