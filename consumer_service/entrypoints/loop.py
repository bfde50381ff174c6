"""The consume-handle-commit loop shared by the message consumer and the dead-letter projector."""

import logging
import threading
import time
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaException

from ..application.errors import DeadLetterUnavailable, StoreUnavailable
from ..application.records import IncomingRecord
from ..infrastructure.kafka_io import commit, rewind, to_incoming

log = logging.getLogger(__name__)
RECOVERABLE = (DeadLetterUnavailable, StoreUnavailable)


class DependencyWait:
    """Backs off while a dependency is down, logging once when waiting starts and once when it ends."""

    def __init__(self, name: str, stop: threading.Event, first: float = 0.5, cap: float = 10.0):
        self._name, self._stop, self._first, self._cap = name, stop, first, cap
        self._delay = 0.0
        self._since: float | None = None

    def failed(self, error: Exception) -> None:
        """Record a failure and wait before the next try (returns early on stop)."""
        if self._since is None:
            self._since = time.monotonic()
            log.warning("%s: waiting for a dependency: %s", self._name, error)
        self._delay = min(self._cap, self._delay * 2 or self._first)
        self._stop.wait(self._delay)

    def succeeded(self) -> None:
        """Record a success, logging the recovery if it ends a wait."""
        if self._since is not None:
            log.warning("%s: dependency recovered after %.1fs", self._name, time.monotonic() - self._since)
        self._since, self._delay = None, 0.0

    @property
    def waiting(self) -> bool:
        """Tell whether a dependency is currently failing."""
        return self._since is not None


def run_loop(
    name: str,
    consumer: Consumer,
    handle: Callable[[list[IncomingRecord]], object],
    stop: threading.Event,
    batch_size: int,
    poll_timeout: float = 0.5,
) -> None:
    """Consume batches until `stop` is set; commit a batch only after `handle` returned."""
    wait = DependencyWait(name, stop)
    try:
        while not stop.is_set():
            records = _next_batch(name, consumer, batch_size, poll_timeout)
            if not records:
                continue
            try:
                handle(records)
            except RECOVERABLE as error:
                rewind(consumer, records)
                wait.failed(error)
                continue
            wait.succeeded()
            commit(consumer, records)
    finally:
        consumer.close()
        log.info("%s: consumer closed", name)


def _next_batch(name: str, consumer: Consumer, batch_size: int, timeout: float) -> list[IncomingRecord]:
    """Read up to `batch_size` records, logging transient client errors and raising fatal ones."""
    records = []
    for message in consumer.consume(num_messages=batch_size, timeout=timeout):
        error = message.error()
        if error is None:
            records.append(to_incoming(message))
        elif error.fatal():
            raise KafkaException(error)
        else:
            log.info("%s: kafka reports %s", name, error)
    return records
