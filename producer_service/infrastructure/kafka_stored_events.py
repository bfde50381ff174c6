"""The live feed of one API process: a single Kafka consumer reading the stored-events topic for every stream."""

import logging
import threading
import time
import uuid
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaException, TopicPartition

from shared_adapters.kafka_connection import KafkaConnection
from shared_adapters.kafka_orphans import Renewing, WatchedConsumer
from shared_adapters.kafka_partition_ends import partition_count, partition_ends
from shared_domain.plausibility import PATIENCE_S, RECHECK_S, Holdback, SourceCheck, misplaced
from shared_domain.stored_events import StoredEvent, decode_stored_event

from ..application.live import Hub

log = logging.getLogger(__name__)


class FeedUnavailable(Exception):
    """The stored-events topic could not be reached, so no stream can start."""


class DropReport:
    """Warns of dropped events at most once per `interval_s`, with how many were dropped since the last warning."""

    def __init__(self, interval_s: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self._interval, self._clock = interval_s, clock
        self._last: float | None = None
        self._count = 0

    def note(self, event: StoredEvent, problem: str, count: int = 1) -> None:
        """Count `count` dropped events, `event` (dropped for `problem`) among them; warn when due."""
        self._count += count
        now = self._clock()
        if self._last is not None and now - self._last < self._interval:
            return
        source = event.source
        log.warning("live feed: dropped %d implausible stored event(s) (reported at most every %.0fs); "
                    "e.g. %.100s at %.100s:%d:%d: %.300s", self._count, self._interval, event.message.message_id,
                    source.topic, source.partition, source.offset, problem,
                    extra={"messageId": event.message.message_id})
        self._last, self._count = now, 0


def plausible(events: list[StoredEvent], check: Holdback[StoredEvent], report: DropReport,
              partitions: int | None = None) -> list[StoredEvent]:
    """The events (with those held back before) whose source can be a record of the message topic (of `partitions`,
    when known) that holds their recipient's messages; the others are dropped and reported, or held back a while."""
    try:
        ready, dropped = check.admit(events)
        misplacements = [misplaced(event.message.recipient, event.source, partitions) for event in ready]
    except Exception as error:  # the safety net: a check that fails drops the batch, never stops the feed
        ready, dropped = [], [(event, f"not checked ({type(error).__name__}: {error})") for event in events]
        misplacements = []
    dropped += [(event, problem) for event, problem in zip(ready, misplacements) if problem is not None]
    if dropped:
        report.note(*dropped[0], count=len(dropped))
    return [event for event, problem in zip(ready, misplacements) if problem is None]


class StoredEventFeed:
    """Reads every partition of the stored-events topic from where it ended when started, and hands events to the hub.

    Started in the background when the process starts, or else by the first stream: its positions
    are fixed before that stream reads the store, so every message stored afterwards reaches the hub
    (no group, no commits: each process reads all).
    An event whose source cannot be a record of `messages_topic` is dropped: anyone who can write to
    the stored-events topic could otherwise move a stream's position past every genuine message. One
    just past its partition's end is held back instead (a new leader reports an end behind the old
    one's for a while), with the events behind it in that partition, while the others go on.
    """

    def __init__(self, kafka: KafkaConnection, topic: str, hub: Hub, messages_topic: str, timeout_s: float = 5.0):
        self._kafka, self._topic, self._hub, self._timeout = kafka, topic, hub, timeout_s
        self._messages_topic = messages_topic
        self._check: Holdback[StoredEvent] | None = None
        self._partitions: int | None = None
        self._drops = DropReport()
        self._lock = threading.Lock()
        self._starting = threading.Lock()  # held by the one start under way
        self._consumer: Renewing | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._read: dict[int, int] = {}  # by partition, the offset read next

    def read_up_to(self) -> dict[int, int]:
        """For each partition of the stored-events topic, the offset the feed reads next (nothing before it started)."""
        with self._lock:
            return dict(self._read)

    def start_soon(self, retry_s: float = 0.5, most_s: float = 30.0) -> None:
        """Start reading in the background, so that no stream need wait; while Kafka does not answer (or the topic is
        not there yet), try again, waiting twice as long each time up to `most_s`, until started or closed."""
        def start() -> None:
            wait = retry_s
            while not self._stop.is_set():
                try:
                    self.ensure_started()
                    return
                except FeedUnavailable as error:
                    log.log(logging.INFO if wait == retry_s else logging.DEBUG,
                            "live feed not started yet (%s): trying again, or the first stream starts it", error)
                self._stop.wait(wait)
                wait = min(wait * 2, most_s)

        threading.Thread(target=start, name="live-feed-start", daemon=True).start()

    def ensure_started(self) -> None:
        """Start reading unless already reading; raise FeedUnavailable when Kafka does not answer.

        One start is tried at a time. A caller waits for another's no longer than the look-up timeout before it
        gives up, so while Kafka does not answer, streams asking are refused in about twice that timeout instead of
        each waiting out the attempts of those before it; where the feed has read is told meanwhile.
        """
        if self._reading():
            return
        if not self._starting.acquire(timeout=self._timeout):
            raise FeedUnavailable(f"a start of the live feed has waited {self._timeout:g}s for Kafka")
        try:
            if not self._reading():
                self._start()
        finally:
            self._starting.release()

    def _reading(self) -> bool:
        """Whether the feed reads; FeedUnavailable once it is closed."""
        with self._lock:
            if self._consumer is not None:
                return True
            if self._stop.is_set():
                raise FeedUnavailable("the feed is closed")
            return False

    def _start(self) -> None:
        """Fix where each partition ends and start reading from there (Kafka's look-ups are made outside the lock)."""
        first = self._new_consumer()
        try:
            ends = self._ends(first)
            first.assign(ends)
        except (KafkaException, KeyError) as error:
            first.close()
            raise FeedUnavailable(f"topic {self._topic}: {error}") from None
        consumer = Renewing(self._resumed, "live-feed", client=first)
        check = Holdback(SourceCheck(self._messages_topic, partition_ends(consumer, self._messages_topic, self._timeout)),
                         lambda event: event.source, PATIENCE_S)
        partitions = partition_count(consumer, self._messages_topic, self._timeout)
        with self._lock:  # close() either sees the thread, and joins it, or comes first and nothing starts
            if self._stop.is_set():
                consumer.close()
                raise FeedUnavailable("the feed is closed")
            self._consumer, self._check, self._partitions = consumer, check, partitions
            self._read = {end.partition: end.offset for end in ends}
            self._thread = threading.Thread(target=self._run, name="live-feed", daemon=True)
            self._thread.start()
        log.info("live feed reading %s from its end", self._topic)

    def _new_consumer(self) -> WatchedConsumer:
        """A client of a group of its own that commits nothing: every process reads every event."""
        return WatchedConsumer(self._kafka.config(**{"group.id": f"live-{uuid.uuid4().hex}", "enable.auto.commit": False,
                                                     "enable.auto.offset.store": False}))

    def _resumed(self) -> WatchedConsumer:
        """A client reading on from where the feed has read, in place of one librdkafka left with no broker."""
        consumer = self._new_consumer()
        with self._lock:
            consumer.assign([TopicPartition(self._topic, partition, offset) for partition, offset in self._read.items()])
        return consumer

    def _ends(self, consumer: Consumer) -> list[TopicPartition]:
        """Every partition of the topic at its current end (the topic must exist)."""
        partitions = consumer.list_topics(self._topic, timeout=self._timeout).topics[self._topic]
        if partitions.error is not None:
            raise KafkaException(partitions.error)
        ends = []
        for partition in partitions.partitions:
            _, high = consumer.get_watermark_offsets(TopicPartition(self._topic, partition), timeout=self._timeout)
            ends.append(TopicPartition(self._topic, partition, high))
        return ends

    def _run(self) -> None:
        """Hand what arrives to the hub, as soon as one event is there, until closed."""
        clients = self._consumer
        while not self._stop.is_set():
            consumer = clients.current()  # one client a batch: a new one reads again what the last had not handed on
            first = consumer.poll(RECHECK_S if self._check.holding else 0.5)
            if first is None:
                if self._check.holding:
                    self._hub.publish(plausible([], self._check, self._drops, self._partitions))
                continue
            events, records = [], [first, *consumer.consume(num_messages=499, timeout=0)]
            # Counted read before they are handed out: a stream subscribing in between waits for the views to have them.
            with self._lock:
                for record in records:
                    if record.error() is None:
                        self._read[record.partition()] = max(record.offset() + 1, self._read.get(record.partition(), 0))
            # With no stream open nothing is decoded: one opened from now on waits for the views to hold what was read.
            listened = not self._hub.empty
            for record in records:
                if record.error() is not None:
                    if record.error().fatal():
                        log.error("live feed: %s", record.error())
                    continue
                if not listened:
                    continue
                try:
                    events.append(decode_stored_event(record.value()))
                except Exception as error:  # the safety net: no event stops the feed
                    log.warning("live feed: skipping an unreadable event at %s:%d:%d: %s", record.topic(),
                                record.partition(), record.offset(), error)
            # Only what a stream would be given is judged: each judgement may ask Kafka where a partition ends.
            self._hub.publish(plausible(self._hub.of_interest(events), self._check, self._drops, self._partitions))
        clients.close()

    def close(self) -> None:
        """Stop reading."""
        self._stop.set()
        with self._lock:  # a start under way either finishes first, and its thread is joined, or starts nothing
            thread = self._thread
        if thread is not None:
            thread.join(5)
