"""The consume-handle-commit loop shared by the message consumer and the dead-letter projector."""

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from confluent_kafka import Consumer, KafkaException

from ..application.errors import DeadLetterUnavailable, StoreUnavailable
from ..application.records import IncomingRecord
from ..infrastructure.kafka_io import BROKER_DOWN_CODES, commit, rewind, to_incoming
from .dependencies import Backoff, DependencyState

log = logging.getLogger(__name__)
PROBE_INTERVAL = 2.0


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


def run_loop(
    name: str,
    consumer: Consumer,
    handle: Callable[[list[IncomingRecord]], object],
    stop: threading.Event,
    batch_size: int,
    dependencies: Dependencies,
    poll_timeout: float = 0.5,
) -> None:
    """Consume batches until `stop` is set; commit a batch only after `handle` returned."""
    backoff = Backoff(stop)
    try:
        while not stop.is_set():
            records = _next_batch(name, consumer, batch_size, poll_timeout, dependencies.kafka)
            dependencies.probe_down()
            if not records:
                continue
            try:
                handle(records)
            except DeadLetterUnavailable as error:
                _retry_later(consumer, records, dependencies.kafka, error, backoff)
                continue
            except StoreUnavailable as error:
                _retry_later(consumer, records, dependencies.mongodb, error, backoff)
                continue
            backoff.reset()
            if commit(consumer, records):
                dependencies.kafka.up()
    finally:
        consumer.close()
        log.info("%s: consumer closed", name)


def _retry_later(consumer: Consumer, records: list[IncomingRecord], state: DependencyState, error, backoff: Backoff) -> None:
    """Read the batch again after a backoff: nothing of it was committed."""
    state.down(error)
    rewind(consumer, records)
    backoff.wait()


def _next_batch(name: str, consumer: Consumer, batch_size: int, timeout: float, kafka: DependencyState) -> list[IncomingRecord]:
    """Read up to `batch_size` records, noting broker outages and raising fatal errors."""
    records = []
    for message in consumer.consume(num_messages=batch_size, timeout=timeout):
        error = message.error()
        if error is None:
            records.append(to_incoming(message))
        elif error.fatal():
            raise KafkaException(error)
        elif error.code() in BROKER_DOWN_CODES:
            kafka.down(error.str())
        else:
            log.info("%s: kafka reports %s", name, error)
    return records

