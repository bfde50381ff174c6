"""The consume-handle-commit loop shared by the message consumer and the projectors."""

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from confluent_kafka import Consumer, KafkaException

from shared_adapters.kafka_orphans import WatchedConsumer, abandon

from ..application.errors import KafkaUnavailable, StoreUnavailable
from ..application.records import IncomingRecord
from ..infrastructure.kafka_io import (BROKER_DOWN_CODES, PARTITION_CHECK_INTERVAL_S, PartitionWatch, ServedPartition,
                                       assign_partition, commit, rewind, subscribe, to_incoming)
from .dependencies import Backoff, Dependencies, DependencyState
from .metrics import REWOUND, record_batch, record_lag

log = logging.getLogger(__name__)
# How long the loop waits at most for the worker, idle when handed a batch, to begin it.
HANDOFF_TIMEOUT_S = 1.0


def run_loop(
    name: str,
    connect: Callable[[], WatchedConsumer],
    topic: str,
    handle: Callable[[object], object],
    stop: threading.Event,
    batch_size: int,
    dependencies: Dependencies,
    poll_timeout: float = 0.5,
    prepare: Callable[[list[IncomingRecord]], object] = lambda records: records,
    partition: ServedPartition | None = None,
    partition_check_s: float = PARTITION_CHECK_INTERVAL_S,
    on_moved: Callable[[], None] = lambda: None,
) -> None:
    """Subscribe to `topic` (or read only `partition` of it) through a consumer from `connect` and consume batches until
    `stop` is set; commit a batch only after `handle` returned, and after its outcome's `acknowledged` returned when
    it has one.

    A batch is read as soon as one record is there, with whatever else has arrived (up to
    `batch_size`), and goes through `prepare` (decoding, no I/O) on this thread while the previous
    batch's `handle` (the writes) runs on another, and the one before's `acknowledged` (the broker's
    acknowledgement of what it announced) is awaited: the three overlap, the commits keep their order.
    A consumer of one partition also stops, then raises PartitionsChanged, once the topic's
    partition count is no longer the one its partition was computed from. `on_moved` runs whenever
    the group takes partitions away from this consumer. A consumer librdkafka left with no broker
    to reach is replaced by a new one from `connect`, which reads on from the last commit.
    """
    while not _consume(name, connect(), topic, handle, stop, batch_size, dependencies, poll_timeout, prepare,
                       partition, partition_check_s, on_moved):
        on_moved()


def _consume(name: str, consumer: WatchedConsumer, topic: str, handle: Callable[[object], object], stop: threading.Event,
             batch_size: int, dependencies: Dependencies, poll_timeout: float,
             prepare: Callable[[list[IncomingRecord]], object], partition: ServedPartition | None,
             partition_check_s: float, on_moved: Callable[[], None]) -> bool:
    """run_loop's work through one consumer: True once stopped, False when the consumer was orphaned (and abandoned)."""
    pipeline = _Pipeline(name, consumer, dependencies, Backoff(stop), None if partition is None else partition.commit_metadata)
    watch, moved, orphaned = None, [], False

    def after_revoke() -> None:
        moved.append(True)
        on_moved()

    if partition is None:
        subscribe(consumer, topic, name, before_revoke=pipeline.settle_before_revoke, after_revoke=after_revoke)
    else:
        assign_partition(consumer, partition, name)
        watch = PartitionWatch(consumer, partition, partition_check_s)
    try:
        while not stop.is_set() and (watch is None or watch.holds()):
            if consumer.orphaned():
                orphaned = True
                break
            wait = 0.0 if pipeline.busy else poll_timeout
            records = _next_batch(name, consumer, batch_size, wait, dependencies.kafka)
            if moved:
                moved.clear()
                records = _still_assigned(name, consumer, records)
            dependencies.probe_down()
            prepared = prepare(records) if records else None
            if not pipeline.settle(also_unhandled=records):
                continue
            if prepared is not None:
                pipeline.start(records, handle, prepared)
            pipeline.announce()
        # An orphan's commits never reach a broker: what it handled since its last one is read again by the next.
        pipeline.settle(synchronous=not orphaned, wait=not orphaned)
    finally:
        pipeline.close()
        if orphaned:
            abandon(consumer, name)
        else:
            consumer.close()
            log.info("%s: consumer closed", name)
    if watch is not None:
        watch.raise_if_changed()
    return not orphaned


class _Pipeline:
    """At most one batch being handled on a worker thread while the loop reads and prepares the next, and one handled
    batch waiting for what it announced to be acknowledged (its outcome's `acknowledged`), which happens meanwhile.

    A batch is committed once it was handled and acknowledged, in the order read.
    """

    def __init__(self, name: str, consumer: Consumer, dependencies: Dependencies, backoff: Backoff,
                 commit_metadata: str | None = None):
        self._name, self._consumer, self._dependencies, self._backoff = name, consumer, dependencies, backoff
        self._commit_metadata = commit_metadata
        self._worker = ThreadPoolExecutor(1, thread_name_prefix=f"{name}-writes")
        self._records: list[IncomingRecord] = []
        self._handled: Future | None = None
        self._acknowledging: tuple[list[IncomingRecord], object, float] | None = None  # records, outcome, seconds

    @property
    def busy(self) -> bool:
        """Whether a batch is being handled or acknowledged."""
        return self._handled is not None or self._acknowledging is not None

    def start(self, records: list[IncomingRecord], handle: Callable, prepared) -> None:
        """Hand a prepared batch to the worker, and return once the worker has begun it."""
        begun = threading.Event()
        self._records, self._handled = records, self._worker.submit(_timed, handle, prepared, begun)
        # The worker's first steps, up to sending the batch's writes, need the interpreter lock. Had this thread gone
        # on to announce and decode, the worker would wait a switch interval (5 ms) or more for it, the store idle.
        begun.wait(HANDOFF_TIMEOUT_S)

    def announce(self) -> None:
        """Let the handled batch's outcome start what it announces (its acknowledged's `publish`, when it has one)."""
        if self._acknowledging is not None:
            getattr(self._acknowledging[1].acknowledged, "publish", lambda: None)()

    def settle(self, also_unhandled: list[IncomingRecord] = (), synchronous: bool = False, wait: bool = True) -> bool:
        """Commit what was handled and acknowledged, waiting for it; or rewind what failed, the batches after it and
        `also_unhandled`, to read again (False then). `synchronous`: the batch in hand is committed too."""
        if self._acknowledging is not None:
            records, outcome, seconds = self._acknowledging
            self._acknowledging = None
            try:
                outcome.acknowledged()
            except KafkaUnavailable as error:
                return self._failed(error, records + self._left_in_hand() + list(also_unhandled), wait)
            self._commit(records, outcome, seconds, synchronous)
        if self._handled is None:
            return True
        records, handled = self._take_in_hand()
        try:
            outcome, seconds = handled.result()
        except (KafkaUnavailable, StoreUnavailable) as error:
            return self._failed(error, records + list(also_unhandled), wait)
        self._backoff.reset()
        if getattr(outcome, "acknowledged", None) is None:
            self._commit(records, outcome, seconds, synchronous)
            return True
        self._acknowledging = (records, outcome, seconds)  # acknowledged while the next batch is handled
        return self.settle(also_unhandled, synchronous, wait) if synchronous else True

    def settle_before_revoke(self) -> None:
        """Finish and commit the batch in hand before partitions move to another consumer, which would read it again."""
        self.settle(synchronous=True, wait=False)

    def close(self) -> None:
        """Stop the worker thread once its batch, if any, is done."""
        self._worker.shutdown(wait=True)

    def _commit(self, records: list[IncomingRecord], outcome, seconds: float, synchronous: bool) -> None:
        """Commit a batch that was handled and acknowledged, and count it."""
        commit(self._consumer, records, synchronous, self._commit_metadata)
        record_batch(self._name, records, outcome, seconds)
        record_lag(self._name, self._consumer, records)

    def _take_in_hand(self) -> tuple[list[IncomingRecord], Future]:
        """The batch in hand and its handling, which the pipeline no longer holds."""
        records, handled = self._records, self._handled
        self._records, self._handled = [], None
        return records, handled

    def _left_in_hand(self) -> list[IncomingRecord]:
        """The records of the batch in hand, once its handling is over (what came of it does not matter: it is read
        again after a batch before it that failed)."""
        if self._handled is None:
            return []
        records, handled = self._take_in_hand()
        try:
            handled.result()
        except (KafkaUnavailable, StoreUnavailable):
            pass
        return records

    def _failed(self, error: Exception, records: list[IncomingRecord], wait: bool) -> bool:
        """Note the dependency down, rewind the records to read them again and back off (when `wait`); False."""
        state = self._dependencies.kafka if isinstance(error, KafkaUnavailable) else self._dependencies.mongodb
        state.down(error)
        REWOUND.labels(self._name, state.name).inc()
        rewind(self._consumer, records)
        if wait:
            self._backoff.wait()
        return False


def _timed(handle: Callable, prepared, begun: threading.Event) -> tuple[object, float]:
    """Handle a batch (saying when it has begun); return the outcome and how long it took."""
    begun.set()
    began = time.perf_counter()
    outcome = handle(prepared)
    return outcome, time.perf_counter() - began


def _still_assigned(name: str, consumer: Consumer, records: list[IncomingRecord]) -> list[IncomingRecord]:
    """The records of partitions still this consumer's.

    A revoke served while a batch was being read leaves in it the records read before, of
    partitions now another consumer's: that consumer reads them again from the commit made before
    the revoke, and it alone may write what they change (a view has one writer).
    """
    owned = {(held.topic, held.partition) for held in consumer.assignment()}
    kept = [record for record in records if (record.topic, record.partition) in owned]
    if len(kept) < len(records):
        log.info("%s: left %d records of partitions given up to their new owner", name, len(records) - len(kept))
    return kept


def _next_batch(name: str, consumer: Consumer, batch_size: int, timeout: float, kafka: DependencyState) -> list[IncomingRecord]:
    """Wait up to `timeout` for a record, then take what else has arrived, up to `batch_size` records in all."""
    first = consumer.poll(timeout)
    if first is None:
        return []
    records = []
    for message in [first, *consumer.consume(num_messages=batch_size - 1, timeout=0)] if batch_size > 1 else [first]:
        error = message.error()
        if error is None:
            records.append(to_incoming(message))
        elif error.fatal():
            raise KafkaException(error)
        elif error.code() in BROKER_DOWN_CODES:
            kafka.suspect(error.str())
        else:
            log.info("%s: kafka reports %s", name, error)
    return records
