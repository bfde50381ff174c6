"""The consume-handle-commit loop on the real broker: nothing is committed until a batch is handled."""

import threading

import pytest
from confluent_kafka import Producer

from shared_adapters.kafka_connection import KafkaConnection
from consumer_service.application.errors import DeadLetterUnavailable, StoreUnavailable
from consumer_service.entrypoints.dependencies import Dependencies
from consumer_service.entrypoints.loop import run_loop
from consumer_service.infrastructure.kafka_io import ensure_topics, new_consumer
from infra.process import wait_until
from tests.support.orphans import ReportsOrphaned
from tests.support.stack import committed_offset

RECORDS = 20


@pytest.fixture
def topic(kafka, unique):
    """A fresh one-partition topic holding RECORDS records."""
    name = f"loop-{unique}"
    ensure_topics(KafkaConnection(kafka.address), [name], partitions=1, timeout=10)
    producer = Producer({"bootstrap.servers": kafka.address, "acks": "all"})
    for n in range(RECORDS):
        producer.produce(name, key=b"clientB", value=str(n).encode())
    assert producer.flush(10) == 0
    return name


class FlakyHandler:
    """Fails its first `failures` batches with `error`, then records every offset it handles."""

    def __init__(self, failures: int, error: Exception):
        self.failures, self.error = failures, error
        self.calls, self.handled = 0, []

    def __call__(self, records):
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        self.handled += [record.offset for record in records]


@pytest.mark.parametrize("error, dependency", [
    (DeadLetterUnavailable("dead-letter topic did not acknowledge"), "kafka"),
    (StoreUnavailable("store did not answer"), "mongodb"),
])
def test_a_batch_that_fails_is_read_again_from_its_start_and_committed_only_once_handled(kafka, topic, unique,
                                                                                          error, dependency):
    group = f"loop-group-{unique}"
    consumer = new_consumer(KafkaConnection(kafka.address), group, "loop-test")
    handler, stop, dependencies = FlakyHandler(failures=3, error=error), threading.Event(), Dependencies.fresh()
    loop = threading.Thread(target=run_loop,
                            args=("loop-test", lambda: consumer, topic, handler, stop, 500, dependencies))
    loop.start()
    try:
        wait_until(lambda: handler.calls >= 2, timeout=30, what="the first failed batches")
        assert getattr(dependencies, dependency).is_down
        assert committed_offset(kafka.address, group, topic, 0) < 0, "a failed batch must not be committed"
        wait_until(lambda: committed_offset(kafka.address, group, topic, 0) == RECORDS, timeout=30,
                   what="the batch to be committed once handled")
    finally:
        stop.set()
        loop.join(10)
    assert not loop.is_alive(), "the loop stops when told to"
    assert sorted(set(handler.handled)) == list(range(RECORDS)), "every record was handled after the rewinds"
    assert handler.handled[0] == 0, "the retried batch starts again at its first record"


def _produce(kafka_address: str, topic: str, values: list[bytes]) -> None:
    """Append records to the topic and wait for the broker's acknowledgement."""
    producer = Producer({"bootstrap.servers": kafka_address, "acks": "all"})
    for value in values:
        producer.produce(topic, key=b"clientB", value=value)
    assert producer.flush(10) == 0


def test_a_lone_record_is_handled_without_waiting_for_a_full_batch(kafka, topic, unique):
    handled, stop = [], threading.Event()
    consumer = new_consumer(KafkaConnection(kafka.address), f"loop-lone-{unique}", "loop-test")
    # Batches of 10,000 and a poll timeout of 60 s: a loop that waited for either would not get there.
    loop = threading.Thread(target=run_loop, args=("loop-test", lambda: consumer, topic,
                                                   lambda records: handled.extend(records), stop, 10_000,
                                                   Dependencies.fresh()), kwargs={"poll_timeout": 60})
    loop.start()
    try:
        wait_until(lambda: len(handled) == RECORDS, timeout=20, what="the first records")
        _produce(kafka.address, topic, [b"lone"])
        wait_until(lambda: len(handled) == RECORDS + 1, timeout=20, what="the lone record, well before the poll timeout")
    finally:
        stop.set()
        _produce(kafka.address, topic, [b"wake"])  # the loop notices `stop` when its poll returns
        loop.join(20)
    assert not loop.is_alive()


def test_the_next_batch_is_prepared_while_the_previous_one_is_handled_and_commits_keep_their_order(kafka, topic, unique):
    group, stop, release = f"loop-overlap-{unique}", threading.Event(), threading.Event()
    prepared_while_blocked, handled = [], []

    def prepare(records):
        if not release.is_set() and handled == [] and records[0].offset >= 1:
            prepared_while_blocked.append(records[0].offset)
        return records

    def handle(records):
        if records[0].offset == 0:
            release.wait(30)  # the first batch's writes hang until the test lets them go
        handled.extend(record.offset for record in records)

    consumer = new_consumer(KafkaConnection(kafka.address), group, "loop-test")
    loop = threading.Thread(target=run_loop,
                            args=("loop-test", lambda: consumer, topic, handle, stop, 1, Dependencies.fresh()),
                            kwargs={"prepare": prepare})
    loop.start()
    try:
        wait_until(lambda: prepared_while_blocked, timeout=20, what="the second batch prepared during the first's writes")
        assert committed_offset(kafka.address, group, topic, 0) < 0, "nothing is committed before the first batch is handled"
        release.set()
        wait_until(lambda: committed_offset(kafka.address, group, topic, 0) == RECORDS, timeout=30, what="every commit")
    finally:
        release.set()
        stop.set()
        loop.join(20)
    assert not loop.is_alive()
    assert handled == list(range(RECORDS)), "batches are handled one at a time, in order"


def test_an_orphaned_consumer_is_replaced_and_its_successor_reads_on_from_the_last_commit(kafka, topic, unique):
    group, stop, handled, clients, moved = f"loop-orphan-{unique}", threading.Event(), [], [], []

    def connect():
        clients.append(new_consumer(KafkaConnection(kafka.address), group, "loop-test"))
        first = len(clients) == 1
        return ReportsOrphaned(clients[-1], lambda: first and len(handled) >= RECORDS // 2)

    def handle(records):
        handled.extend((len(clients), record.offset) for record in records)

    loop = threading.Thread(target=run_loop, args=("loop-test", connect, topic, handle, stop, 1, Dependencies.fresh()),
                            kwargs={"on_moved": lambda: moved.append(len(clients))})
    loop.start()
    try:
        wait_until(lambda: committed_offset(kafka.address, group, topic, 0) == RECORDS, timeout=60,
                   what="every record committed by the consumer's successor")
    finally:
        stop.set()
        loop.join(20)
    assert not loop.is_alive()
    assert len(clients) == 2 and moved[0] == 1, "the orphan was replaced once, and its partitions counted as moved"
    first = [offset for client, offset in handled if client == 1]
    second = [offset for client, offset in handled if client == 2]
    assert first == list(range(len(first))) and RECORDS // 2 <= len(first) < RECORDS
    assert second == list(range(second[0], RECORDS)), "the successor reads on, in order, to the end"
    assert second[0] <= first[-1] + 1, "nothing between the orphan's last record and its successor's first is skipped"
