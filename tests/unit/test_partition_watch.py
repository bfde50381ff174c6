"""The watch on a served partition's topic: asked rarely, silent brokers change nothing, a new count stops it."""

from types import SimpleNamespace

import pytest
from confluent_kafka import KafkaError, KafkaException

from consumer_service.infrastructure.kafka_io import PartitionsChanged, PartitionWatch, ServedPartition

SERVED = ServedPartition("client-messages", 1, 3)


class FakeConsumer:
    """Answers metadata requests with a partition count it can be told, or not at all."""

    def __init__(self, count: int):
        self.count, self.asked, self.silent = count, 0, False

    def list_topics(self, topic: str, timeout: float):
        self.asked += 1
        if self.silent:
            raise KafkaException(KafkaError(KafkaError._TRANSPORT))
        partitions = {n: None for n in range(self.count)}
        return SimpleNamespace(topics={topic: SimpleNamespace(error=None, partitions=partitions)})


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_broker_is_asked_once_per_interval_however_often_the_loop_looks():
    consumer, clock = FakeConsumer(3), Clock()
    watch = PartitionWatch(consumer, SERVED, interval=30, clock=clock)
    for _ in range(1000):
        assert watch.holds()
    assert consumer.asked == 0
    clock.now += 30
    assert watch.holds() and watch.holds()
    assert consumer.asked == 1


def test_a_broker_that_does_not_answer_changes_nothing():
    consumer, clock = FakeConsumer(3), Clock()
    watch = PartitionWatch(consumer, SERVED, interval=30, clock=clock)
    consumer.silent, clock.now = True, clock.now + 31
    assert watch.holds()
    watch.raise_if_changed()


def test_a_new_partition_count_stops_the_consumer_for_good_with_one_sentence():
    consumer, clock = FakeConsumer(3), Clock()
    watch = PartitionWatch(consumer, SERVED, interval=30, clock=clock)
    consumer.count, clock.now = 6, clock.now + 30
    assert not watch.holds()
    consumer.count, clock.now = 3, clock.now + 30
    assert not watch.holds(), "once changed, the consumer's partition is stale whatever comes next"
    with pytest.raises(PartitionsChanged, match=r"^client-messages has 6 partitions now, not the 3 that put this "
                                                r"consumer's client on \[1\]; stopping"):
        watch.raise_if_changed()
