"""The consume loop with batches whose announcements the broker acknowledges later: the next batch is handled while
one is acknowledged, a batch is committed only once acknowledged, and a batch not acknowledged is read again with
every batch after it."""

import sys
import threading
from types import SimpleNamespace

from confluent_kafka import TopicPartition

from consumer_service.application.errors import StoredEventsUnavailable
from consumer_service.entrypoints.dependencies import Dependencies
from consumer_service.entrypoints.loop import run_loop

from .fetched import Fetched

TOPIC = "client-messages"


class OneRecordAtATime:
    """Hands out records 0 to `count - 1`, one per poll, then stops the loop; notes commits and seeks in `events`."""

    def __init__(self, count: int, stop: threading.Event, events: list):
        self.count, self.stop, self.events, self.next = count, stop, events, 0

    def subscribe(self, topics, on_assign, on_revoke, on_lost):
        on_assign(self, [TopicPartition(TOPIC, 0)])

    def poll(self, timeout):
        if self.next >= self.count:
            self.stop.set()
            return None
        self.next += 1
        return Fetched(TOPIC, 0, self.next - 1)

    def consume(self, num_messages, timeout):
        return []

    def assignment(self):
        return [TopicPartition(TOPIC, 0)]

    def commit(self, offsets, asynchronous):
        self.events += [("commit", offset.offset) for offset in offsets]

    def seek(self, partition):
        self.events.append(("seek", partition.offset))
        self.next = partition.offset

    def get_watermark_offsets(self, partition, cached):
        return -1, -1

    def orphaned(self):
        return False

    def close(self):
        pass


class Outcome:
    """A handled batch whose announcements are acknowledged when asked: noted in `events`, failing when told."""

    def __init__(self, offset: int, events: list, acknowledging: dict[int, threading.Event], fails: bool):
        self.offset, self.events, self.acknowledging, self.fails = offset, events, acknowledging, fails

    def acknowledged(self):
        self.events.append(("acknowledged", self.offset))
        self.acknowledging.setdefault(self.offset, threading.Event()).set()
        if self.fails:
            raise StoredEventsUnavailable("not acknowledged")


def run(count: int, failing: set[int] = frozenset()) -> tuple[list, list[int], list[bool]]:
    """Run the loop over `count` records, one batch each; the events, the offsets handled, and for each batch after
    the first whether the previous batch's acknowledgement was awaited while it was being handled."""
    stop, events, handled, overlapped = threading.Event(), [], [], []
    acknowledging: dict[int, threading.Event] = {}
    consumer = OneRecordAtATime(count, stop, events)

    def handle(records):
        [record] = records
        if record.offset > 0:
            previous = acknowledging.setdefault(record.offset - 1, threading.Event())
            overlapped.append(previous.wait(timeout=5))
        handled.append(record.offset)
        return Outcome(record.offset, events, acknowledging, record.offset in failing and handled.count(record.offset) == 1)

    run_loop("consumer[*]", lambda: consumer, TOPIC, handle, stop, 1, Dependencies.fresh(), poll_timeout=0)
    return events, handled, overlapped


def test_a_batch_is_committed_once_acknowledged_while_the_next_is_handled():
    events, handled, overlapped = run(4)
    assert handled == [0, 1, 2, 3]
    assert overlapped == [True, True, True], "each batch waited for the one before it to be acknowledged first"
    commits = [offset for kind, offset in events if kind == "commit"]
    assert commits == [1, 2, 3, 4], "every batch committed, in order"
    for offset in range(4):
        assert events.index(("acknowledged", offset)) < events.index(("commit", offset + 1)), \
            f"batch {offset} was committed before its announcements were acknowledged"


def test_a_batch_not_acknowledged_is_read_again_with_the_batch_handled_after_it():
    events, handled, _ = run(4, failing={1})
    assert ("commit", 2) not in events[:events.index(("seek", 1))], "the failed batch was committed"
    assert ("commit", 3) not in events[:events.index(("seek", 1))], "the batch after it was committed"
    assert handled == [0, 1, 2, 1, 2, 3], "both were read and handled again from the failed one on"
    assert [offset for kind, offset in events if kind == "commit"] == [1, 2, 3, 4]


class Announcement:
    """A batch's announcement: published when the loop says, acknowledged when asked (which publishes it too)."""

    def __init__(self, offset: int, events: list):
        self.offset, self.events, self.published = offset, events, False

    def publish(self):
        if not self.published:
            self.published = True
            self.events.append(("published", self.offset))

    def __call__(self):
        self.publish()
        self.events.append(("acknowledged", self.offset))


class PolledRecords(OneRecordAtATime):
    """OneRecordAtATime, noting each record it hands out."""

    def poll(self, timeout):
        record = super().poll(timeout)
        if record is not None:
            self.events.append(("read", record.offset()))
        return record


def test_a_batch_is_announced_once_the_next_is_being_handled_before_the_one_after_is_read():
    stop, events = threading.Event(), []
    consumer = PolledRecords(4, stop, events)

    def handle(records):
        [record] = records
        return SimpleNamespace(acknowledged=Announcement(record.offset, events))

    run_loop("consumer[*]", lambda: consumer, TOPIC, handle, stop, 1, Dependencies.fresh(), poll_timeout=0)
    for offset in range(4):
        assert events.count(("published", offset)) == 1, f"batch {offset} announced {events.count(('published', offset))} times"
        assert events.index(("published", offset)) < events.index(("acknowledged", offset)) < events.index(
            ("commit", offset + 1))
    for offset in range(2):
        assert events.index(("published", offset)) < events.index(("read", offset + 2)), (
            f"batch {offset} was announced only after the batch after the next was read: {events}")


def test_the_next_batch_is_begun_before_the_last_one_is_announced():
    # A switch interval far longer than any step here: a thread holding the interpreter lock keeps it until it blocks,
    # so the order below is the one the loop makes, not the scheduler's.
    stop, events, interval = threading.Event(), [], sys.getswitchinterval()
    consumer = PolledRecords(3, stop, events)

    def handle(records):
        [record] = records
        events.append(("handling", record.offset))
        return SimpleNamespace(acknowledged=Announcement(record.offset, events))

    sys.setswitchinterval(1.0)
    try:
        run_loop("consumer[*]", lambda: consumer, TOPIC, handle, stop, 1, Dependencies.fresh(), poll_timeout=0)
    finally:
        sys.setswitchinterval(interval)
    for offset in range(2):
        assert events.index(("handling", offset + 1)) < events.index(("published", offset)), (
            f"batch {offset} was announced before the worker began batch {offset + 1}, which then waited: {events}")
