"""confluent-kafka adapters: consumer settings, the partition a client is served from, record conversion, the
dead-letter and stored-event sinks, topics."""

import logging
import operator
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka import OFFSET_STORED, Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka import Message as KafkaMessage
from confluent_kafka.admin import AdminClient, NewTopic

from shared_adapters.kafka_connection import KafkaConnection
from shared_adapters.kafka_delivery import Delivery, produce_and_wait, produce_for_later
from shared_adapters.kafka_orphans import WatchedConsumer
from shared_adapters.kafka_partition_ends import partition_count
from shared_domain.envelope import CONTENT_TYPE, CONTENT_TYPE_HEADER, TRACE_ID_HEADER
from shared_domain.message import Message
from shared_domain.partitioning import PARTITIONER, partition_of
from shared_domain.stored_events import encode_stored_event

from ..application.dlq_operations import PublishFailed
from ..application.errors import DeadLetterUnavailable, StoredEventsUnavailable
from ..application.records import DeadLetter, IncomingRecord, OutgoingRecord
from .kafka_dead_letters import dead_letter_record, truncated_dead_letter_record

log = logging.getLogger(__name__)
BROKER_DOWN_CODES = {KafkaError._ALL_BROKERS_DOWN}
# The dead-letter topic takes records four times the broker's default limit, so any record the
# message topic accepted, plus its context headers, can be dead-lettered whole.
DEAD_LETTER_MAX_BYTES = 4 * 1024 * 1024
# A dead letter larger still keeps this much of its key and value.
TRUNCATED_KEEP_BYTES = 64 * 1024
# A per-client consumer's commits carry the partition count it served under, so that a later start can tell a
# repartition (records of its client may wait on another partition) from commits of an older group consumer.
COUNT_METADATA = "partitions="
COORDINATOR_NOT_READY = {KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
                         KafkaError.COORDINATOR_NOT_AVAILABLE}
# How often a consumer serving one partition asks whether its topic still has the partition count it started with.
PARTITION_CHECK_INTERVAL_S = 30.0


# What a held fetch waits for at most (a backlog fills it at once), and how long the views projector's are held: its
# writes are the store's largest load, and a batch writes each view, page and read marker it changes once.
GATHER_BYTES = 1024 * 1024
VIEWS_GATHER_MS = 50


def new_consumer(kafka: KafkaConnection, group_id: str, client_name: str, on_broker_down=None,
                 on_broker_up=None, gather_ms: int = 0) -> WatchedConsumer:
    """A consumer that commits only when told to, starting from the earliest unread record, and tells when it is
    orphaned (shared_adapters.kafka_orphans).

    `on_broker_down(error)` is called when the client loses its brokers, `on_broker_up()` when a
    commit succeeds. With `gather_ms`, the broker holds each fetch up to that long while less than
    GATHER_BYTES are there: records arriving one by one come in batches of what that time brought.
    """
    def on_error(error: KafkaError) -> None:
        if error.code() in BROKER_DOWN_CODES and on_broker_down is not None:
            on_broker_down(error.str())
        elif error.code() != KafkaError._TRANSPORT:  # single connection drops are retried; outages are above
            log.warning("%s: kafka reports %s", client_name, error)

    def on_commit(error: KafkaError | None, partitions: list[TopicPartition]) -> None:
        failed = error or next((p.error for p in partitions if p.error is not None), None)
        if failed is not None:
            if failed.code() != KafkaError._NO_OFFSET:
                log.warning("%s: commit failed, its records will be read again: %s", client_name, failed)
        elif on_broker_up is not None:
            on_broker_up()

    return WatchedConsumer(kafka.config(**{
        "error_cb": on_error,
        "on_commit": on_commit,
        "group.id": group_id,
        "client.id": client_name,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "partition.assignment.strategy": "cooperative-sticky",
        "max.poll.interval.ms": 300000,
        # A crashed consumer's partitions move to the others after 10 s rather than 45 s.
        "session.timeout.ms": 10000,
        "heartbeat.interval.ms": 3000,
        **({"fetch.wait.max.ms": gather_ms, "fetch.min.bytes": GATHER_BYTES} if gather_ms else {}),
    }))


def subscribe(consumer: Consumer, topic: str, name: str, before_revoke=None, after_revoke=None) -> None:
    """Subscribe to a topic, logging each partition the group hands to this consumer or takes away.

    `before_revoke()` runs while partitions are still this consumer's, before they move;
    `after_revoke()` once they are gone (given up or lost).
    """
    def described(partitions: list[TopicPartition]) -> str:
        return ", ".join(f"{p.topic}[{p.partition}]" for p in sorted(partitions, key=lambda p: (p.topic, p.partition)))

    def on_assign(_consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if partitions:
            log.info("%s: assigned %s", name, described(partitions))

    def on_revoke(_consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if partitions:
            if before_revoke is not None:
                before_revoke()
            log.info("%s: gave up %s", name, described(partitions))
            if after_revoke is not None:
                after_revoke()

    def on_lost(_consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.warning("%s: lost %s to a rebalance; uncommitted records go to the new owner", name, described(partitions))
        if after_revoke is not None:
            after_revoke()

    consumer.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost)


@dataclass(frozen=True)
class ServedPartition:
    """The one partition of a topic a per-client consumer reads, and the partition count that put its client there."""

    topic: str
    number: int
    count: int

    @property
    def commit_metadata(self) -> str:
        """What each commit of this consumer carries: the partition count its partition was computed from."""
        return f"{COUNT_METADATA}{self.count}"


class PartitionsChanged(Exception):
    """The topic's partitions are not those a per-client consumer's partition came from: it must not read on."""


def served_partition(kafka: KafkaConnection, group_id: str, topic: str, client: str,
                     timeout: float = 10.0) -> ServedPartition:
    """The partition `client`'s messages go to; PartitionsChanged when the group left records unread on another."""
    consumer = Consumer(kafka.config(**{"group.id": group_id}))
    try:
        count = _known_partition_count(consumer, topic, timeout)
        if count is None:
            raise KafkaException(KafkaError(KafkaError._TIMED_OUT, f"the partitions of {topic} are not known"))
        served = ServedPartition(topic, partition_of(client.encode(), count), count)
        counts = _counts_served_under(consumer, served, timeout)
        # Only a count other than today's means the client's key moved: commits without one were made by a
        # consumer of every partition (the group consumer per-client deployments used before), which left
        # nothing of this client's behind.
        unread = _unread_elsewhere(consumer, served, timeout) if counts - {count} else {}
    finally:
        consumer.close()
    if unread:
        raise PartitionsChanged(_refusal(group_id, client, served, unread))
    return served


def _known_partition_count(consumer: Consumer, topic: str, timeout: float) -> int | None:
    """The topic's partition count, asked again until `timeout` while the broker asked does not know the topic yet.

    On a cluster a topic just created reaches each broker's metadata in turn, so one may not know it for a moment.
    """
    deadline = time.monotonic() + timeout
    while True:
        count = partition_count(consumer, topic, max(deadline - time.monotonic(), 0.1))
        if count is not None or time.monotonic() >= deadline:
            return count
        time.sleep(0.2)


def _counts_served_under(consumer: Consumer, served: ServedPartition, timeout: float) -> set[int]:
    """The partition counts the group's commits on the topic say they were made under."""
    positions = _committed(consumer, [TopicPartition(served.topic, n) for n in range(served.count)], timeout)
    metadata = [position.metadata or "" for position in positions if position.offset >= 0]
    return {int(text[len(COUNT_METADATA):]) for text in metadata
            if text.startswith(COUNT_METADATA) and text[len(COUNT_METADATA):].isdigit()}


def _committed(consumer: Consumer, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
    """The group's committed offsets, asking again while its coordinator is still being found or loading."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return consumer.committed(partitions, timeout=max(deadline - time.monotonic(), 0.1))
        except KafkaException as error:
            retry = error.args[0].retriable() or error.args[0].code() in COORDINATOR_NOT_READY
            if not retry or time.monotonic() >= deadline:
                raise
            time.sleep(0.1)


def _unread_elsewhere(consumer: Consumer, served: ServedPartition, timeout: float) -> dict[int, tuple[int, int]]:
    """Other partitions where the group committed an offset short of the end: {partition: (committed, end)}."""
    others = [TopicPartition(served.topic, number) for number in range(served.count) if number != served.number]
    unread = {}
    for position in _committed(consumer, others, timeout) if others else []:
        if position.offset < 0:  # never committed there: nothing was left behind
            continue
        ends = consumer.get_watermark_offsets(TopicPartition(served.topic, position.partition), timeout=timeout)
        if ends is None:
            raise KafkaException(KafkaError(KafkaError._TIMED_OUT, f"the end of {served.topic} is not known"))
        if position.offset < ends[1]:
            unread[position.partition] = (position.offset, ends[1])
    return unread


def _refusal(group_id: str, client: str, served: ServedPartition, unread: dict[int, tuple[int, int]]) -> str:
    """The one line saying why a per-client consumer does not start."""
    ranges = ", ".join(f"[{number}] offsets {first} to {end - 1}" for number, (first, end) in sorted(unread.items()))
    return (f"group {group_id} has records it never read on {served.topic} {ranges}, and {client}'s messages now go "
            f"to {served.topic}[{served.number}] of {served.count}: the partition count (or the partitioner) changed "
            f"while they were in flight, so they may hold {client}'s messages; not starting (see README, Consumers)")


def topic_partitions(kafka: KafkaConnection, topic: str, timeout: float = 10.0) -> int | None:
    """How many partitions the topic has, asked by a client of its own; None when the broker does not say in time."""
    return partition_count(AdminClient(kafka.config()), topic, timeout)


def assign_partition(consumer: Consumer, served: ServedPartition, name: str) -> None:
    """Read only the served partition, from the offset the consumer's group committed there (the earliest when none)."""
    consumer.assign([TopicPartition(served.topic, served.number, OFFSET_STORED)])
    log.info("%s: serving %s[%d] alone, the partition of its client among %d", name, served.topic, served.number,
             served.count)


class PartitionWatch:
    """Asks, at most every `interval` seconds, whether a topic keeps the partition count its served partition is of."""

    def __init__(self, consumer: Consumer, served: ServedPartition, interval: float = PARTITION_CHECK_INTERVAL_S,
                 clock=time.monotonic):
        self._consumer, self._served, self._interval, self._clock = consumer, served, interval, clock
        self._asked = clock()
        self.count = served.count

    def holds(self) -> bool:
        """Whether the count is unchanged; a broker that does not answer changes nothing."""
        if self.count == self._served.count and self._clock() - self._asked >= self._interval:
            self._asked = self._clock()
            self.count = partition_count(self._consumer, self._served.topic, timeout=1.0) or self.count
        return self.count == self._served.count

    def raise_if_changed(self) -> None:
        """Raise PartitionsChanged once the count has changed (asks nothing)."""
        served = self._served
        if self.count != served.count:
            raise PartitionsChanged(
                f"{served.topic} has {self.count} partitions now, not the {served.count} that put this consumer's "
                f"client on [{served.number}]; stopping, so that a restart reads the partition its messages go to now")


def new_reliable_producer(kafka: KafkaConnection, client_name: str, delivery_timeout_ms: int,
                          max_message_bytes: int | None = None, linger_ms: int = 5) -> "ReliableProducer":
    """A producer whose acknowledgement means every in-sync replica has the record."""
    return ReliableProducer(lambda: Producer(kafka.config(**{
        "client.id": client_name,
        "acks": "all",
        "enable.idempotence": True,
        "partitioner": PARTITIONER,  # a replayed record goes where its key's consumer reads
        "linger.ms": linger_ms,
        "message.timeout.ms": delivery_timeout_ms,
        **({"message.max.bytes": max_message_bytes} if max_message_bytes else {}),
    })))


class ReliableProducer:
    """Produces records and waits for their acknowledgements; a record not delivered makes the next send use a new client.

    librdkafka's idempotent producer can stay stuck after its broker restarted while requests
    were in flight, timing out every later record although the broker answers again; a new
    client (a new producer id) starts clean. Records of the old one that may still land are
    duplicates the readers of every topic written this way already drop.
    """

    def __init__(self, make: Callable[[], Producer]):
        self._make = make
        self._producer = make()

    def send(self, topic: str, records: list[OutgoingRecord], timeout: float) -> list[KafkaError | None]:
        """Produce records and wait for their acknowledgements; return each one's error, None once acknowledged."""
        producer = self._producer
        return self._judged(producer, produce_and_wait(producer, topic, records, timeout), timeout)

    def send_later(self, topic: str, records: list[OutgoingRecord],
                   timeout: float) -> Callable[[], list[KafkaError | None]]:
        """Produce records now; the call that waits for their acknowledgements (for up to `timeout`) and returns each
        one's error, None once acknowledged."""
        producer = self._producer
        reports = produce_for_later(producer, topic, records)
        return lambda: self._judged(producer, reports(timeout), timeout)

    def _judged(self, producer: Producer, reports: list[Delivery | None], timeout: float) -> list[KafkaError | None]:
        """Each record's error (a report that did not come: timed out); a record that never got through has the
        producer made again, unless that was done since."""
        errors = [KafkaError(KafkaError._MSG_TIMED_OUT, f"not acknowledged within {timeout:.1f}s") if report is None
                  else report.error for report in reports]
        if producer is self._producer and any(error is not None and error.code() in RENEW_AFTER for error in errors):
            self._renew()
        return errors

    def reach(self, topic: str, timeout: float) -> None:
        """Learn where `topic` lives and connect to it now, waiting up to `timeout`, so that the first records sent
        do not wait for it (a broker not answering yet is left for those records to wait for)."""
        try:
            self._producer.list_topics(topic, timeout=timeout)
        except KafkaException:
            pass

    def flush(self, timeout: float) -> int:
        """Wait up to `timeout` for what is still queued; return how many records remain."""
        return self._producer.flush(timeout)

    def _renew(self) -> None:
        """Drop what the current client still holds and make a new one."""
        stale, self._producer = self._producer, self._make()
        stale.purge()
        stale.flush(0)


# For a header name that is not UTF-8, Message.headers() returns a list with an exception set.
# A plain `message.headers()` call site, once the interpreter has specialised it, does not check
# for that, and the pending exception surfaces later, anywhere; a call made through the C API
# (as methodcaller makes it) always turns it into a SystemError right there.
_headers_of = operator.methodcaller("headers")


def to_incoming(message: KafkaMessage) -> IncomingRecord:
    """Convert a confluent-kafka message into a plain record; what cannot be read of it becomes its defect."""
    try:
        headers, defect = list(_headers_of(message) or []), None
    except Exception as error:  # confluent-kafka raises SystemError for a header name that is not UTF-8
        headers, defect = [], f"the record's headers cannot be read (a header name is not UTF-8?): {error}"
    return IncomingRecord(
        topic=message.topic(), partition=message.partition(), offset=message.offset(),
        key=message.key(), value=message.value(), headers=headers, defect=defect,
    )


# Delivery failures after which a producer is made again: the record was not refused, it just never got through.
RENEW_AFTER = {KafkaError._MSG_TIMED_OUT, KafkaError._TIMED_OUT_QUEUE, KafkaError._PURGE_INFLIGHT, KafkaError._PURGE_QUEUE}


class KafkaDeadLetterSink:
    """Writes dead letters to the dead-letter topic and waits until the broker has them."""

    def __init__(self, producer: ReliableProducer, topic: str, timeout: float):
        self._producer, self._topic, self._timeout = producer, topic, timeout

    def send_all(self, letters: list[DeadLetter]) -> None:
        """Write every letter, a truncated copy of one too large for the topic, or raise DeadLetterUnavailable."""
        errors = self._producer.send(self._topic, [dead_letter_record(letter) for letter in letters], self._timeout)
        too_large = [letter for letter, error in zip(letters, errors) if error is not None and _is_too_large(error)]
        errors = [error for error in errors if error is not None and not _is_too_large(error)]
        if too_large:
            log.warning("%d dead letter(s) too large for %s; writing truncated copies", len(too_large), self._topic)
            truncated = [truncated_dead_letter_record(letter, TRUNCATED_KEEP_BYTES) for letter in too_large]
            errors += [error for error in self._producer.send(self._topic, truncated, self._timeout) if error]
        if errors:
            raise DeadLetterUnavailable(f"topic {self._topic}: {errors[0].str()}")
        by_type = Counter(letter.failure.error_type for letter in letters)
        first = letters[0]
        log.warning("dead-lettered %d record(s) %s; first: %s:%d:%d %s", len(letters), dict(by_type),
                    first.record.topic, first.record.partition, first.record.offset, first.failure.reason[:200])


class KafkaStoredEventSink:
    """Writes a stored event per message, keyed by recipient like the message; the broker's acknowledgement is
    waited for when asked."""

    def __init__(self, producer: ReliableProducer, topic: str, timeout: float):
        self._producer, self._topic, self._timeout = producer, topic, timeout

    def publish_stored(self, stored: list[tuple[IncomingRecord, Message]]) -> Callable[[], None]:
        """Write every event; return the call that waits until the broker has them all or raises
        StoredEventsUnavailable."""
        events = [OutgoingRecord(key=message.recipient.encode(), value=encode_stored_event(message, record.position),
                                 headers=[(CONTENT_TYPE_HEADER, CONTENT_TYPE.encode()), *_trace_of(record)])
                  for record, message in stored]
        errors_of = self._producer.send_later(self._topic, events, self._timeout)

        def acknowledged() -> None:
            errors = [error for error in errors_of() if error]
            if errors:
                raise StoredEventsUnavailable(f"topic {self._topic}: {errors[0].str()}")

        return acknowledged


def _trace_of(record: IncomingRecord) -> list[tuple[str, bytes]]:
    """The record's trace-id header, carried on to what is written about it."""
    return [(name, value) for name, value in record.headers if name == TRACE_ID_HEADER and value is not None][:1]


class KafkaRecordPublisher:
    """Publishes ready-made records (replays) to a topic and waits for the acknowledgements."""

    def __init__(self, producer: ReliableProducer, topic: str, timeout: float):
        self._producer = producer
        self._topic = topic
        self._timeout = timeout

    def publish_all(self, records: list[OutgoingRecord]) -> None:
        """Publish every record, or raise PublishFailed."""
        errors = [error for error in self._producer.send(self._topic, records, self._timeout) if error]
        if errors:
            raise PublishFailed(f"topic {self._topic}: {errors[0].str()}")


def _is_too_large(error: KafkaError) -> bool:
    """Tell whether the producer or the broker refused a record for its size."""
    return error.code() == KafkaError.MSG_SIZE_TOO_LARGE


def commit(consumer: Consumer, records: list[IncomingRecord], synchronous: bool = False,
           metadata: str | None = None) -> None:
    """Commit the offsets after the given records (with `metadata`), waiting for the broker only when `synchronous`.

    A failed commit (say, a rebalance took the partitions away) is logged: the records are then
    read again by their new owner, and storing them again changes nothing.
    """
    try:
        offsets = _next_offsets(records, lambda found: max(found) + 1)
        if metadata is not None:
            offsets = [TopicPartition(o.topic, o.partition, o.offset, metadata=metadata) for o in offsets]
        consumer.commit(offsets=offsets, asynchronous=not synchronous)
    except KafkaException as error:
        log.warning("commit failed, records will be redelivered to their new owner: %s", error)


def rewind(consumer: Consumer, records: list[IncomingRecord]) -> None:
    """Seek each partition back to the first record of the batch so it is read again."""
    for partition in _next_offsets(records, min):
        try:
            consumer.seek(partition)
        except KafkaException as error:
            log.info("could not rewind %s[%d] (no longer assigned?): %s", partition.topic, partition.partition, error)


def _next_offsets(records: list[IncomingRecord], pick) -> list[TopicPartition]:
    """One TopicPartition per partition of the batch, at the offset `pick` chooses."""
    offsets: dict[tuple[str, int], list[int]] = {}
    for record in records:
        offsets.setdefault((record.topic, record.partition), []).append(record.offset)
    return [TopicPartition(topic, partition, pick(found)) for (topic, partition), found in offsets.items()]


@dataclass(frozen=True)
class Replication:
    """How many copies a topic keeps, and how many must have a record before it is acknowledged (None: chosen)."""

    factor: int | None = None
    min_insync: int | None = None

    def of(self, brokers: int) -> tuple[int, int]:
        """(replication factor, min.insync.replicas) on a cluster of `brokers`: by default 3 and 2, as far as it has brokers."""
        factor = self.factor or min(3, brokers)
        return factor, self.min_insync or (2 if factor >= 3 else 1)


def ensure_topics(kafka: KafkaConnection, topics: list[str], partitions: int, timeout: float,
                  configs: dict[str, dict[str, str]] | None = None, replication: Replication = Replication()) -> None:
    """Create the topics that do not exist yet, each with its `configs`; raise KafkaException when the broker cannot be reached."""
    admin = AdminClient(kafka.config())
    metadata = admin.list_topics(timeout=timeout)
    factor, min_insync = replication.of(len(metadata.brokers))
    missing = [NewTopic(name, num_partitions=partitions, replication_factor=factor,
                        config={"min.insync.replicas": str(min_insync), **(configs or {}).get(name, {})})
               for name in topics if name not in metadata.topics]
    if not missing:
        return
    for name, future in admin.create_topics(missing, operation_timeout=timeout, request_timeout=timeout).items():
        try:
            future.result(timeout)
        except KafkaException as error:
            if error.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
        log.info("created topic %s with %d partitions, %d replicas, min.insync.replicas %d", name, partitions, factor,
                 min_insync)


def dead_letter_topic_config() -> dict[str, str]:
    """Settings of a dead-letter topic: room for any record of the message topic plus its context."""
    return {"max.message.bytes": str(DEAD_LETTER_MAX_BYTES + 64 * 1024)}


def is_reachable(kafka: KafkaConnection, timeout: float) -> bool:
    """Tell whether a broker answers a metadata request."""
    try:
        metadata = AdminClient(kafka.config()).list_topics(timeout=timeout)
    except KafkaException:
        return False
    return bool(metadata.brokers)
