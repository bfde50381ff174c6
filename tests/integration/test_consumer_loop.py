"""The consume-handle-commit loop on the real broker: nothing is committed until a batch is handled."""

import threading

import pytest
from confluent_kafka import Producer

from consumer_service.application.errors import DeadLetterUnavailable, StoreUnavailable
from consumer_service.entrypoints.loop import Dependencies, run_loop
from consumer_service.infrastructure.kafka_io import ensure_topics, new_consumer
from infra.process import wait_until
from tests.support.stack import committed_offset

RECORDS = 20


@pytest.fixture
def topic(kafka, unique):
    """A fresh one-partition topic holding RECORDS records."""
    name = f"loop-{unique}"
    ensure_topics(kafka.address, [name], partitions=1, timeout=10)
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
    consumer = new_consumer(kafka.address, group, "loop-test")
    handler, stop, dependencies = FlakyHandler(failures=3, error=error), threading.Event(), Dependencies.fresh()
    loop = threading.Thread(target=run_loop, args=("loop-test", consumer, topic, handler, stop, 500, dependencies))
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
