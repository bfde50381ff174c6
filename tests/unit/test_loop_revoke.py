"""The consume loop after a revoke served while a batch was read: records of partitions given up are not handled."""

import threading

from confluent_kafka import TopicPartition

from consumer_service.entrypoints.dependencies import Dependencies
from consumer_service.entrypoints.loop import run_loop

from .fetched import Fetched

TOPIC = "stored-events"


class RebalancingConsumer:
    """Owns partitions 0 and 1; its first batch read serves the revoke of partition 1 between two records, as
    librdkafka does when a rebalance arrives while `consume` collects messages."""

    def __init__(self, stop: threading.Event):
        self.stop, self.owned, self.commits = stop, set(), []
        self.callbacks = {}
        self._polls = 0

    def subscribe(self, topics, on_assign, on_revoke, on_lost):
        self.callbacks = {"assign": on_assign, "revoke": on_revoke}

    def poll(self, timeout):
        self._polls += 1
        if self._polls == 1:
            self._hand_over("assign", {0, 1})
            return Fetched(TOPIC, 0, 0)
        if self._polls == 2:
            return Fetched(TOPIC, 0, 2)
        self.stop.set()
        return None

    def consume(self, num_messages, timeout):
        if self._polls == 1:
            fetched_before = Fetched(TOPIC, 1, 0)
            self._hand_over("revoke", {1})
            return [fetched_before, Fetched(TOPIC, 0, 1)]
        return []

    def _hand_over(self, kind: str, partitions: set[int]) -> None:
        self.callbacks[kind](self, [TopicPartition(TOPIC, n) for n in sorted(partitions)])
        self.owned = self.owned | partitions if kind == "assign" else self.owned - partitions

    def assignment(self):
        return [TopicPartition(TOPIC, n) for n in sorted(self.owned)]

    def commit(self, offsets, asynchronous):
        self.commits += [(o.partition, o.offset) for o in offsets]

    def get_watermark_offsets(self, partition, cached):
        return -1, -1

    def seek(self, partition):
        pass

    def orphaned(self):
        return False

    def close(self):
        pass


def test_records_read_before_a_revoke_of_their_partition_are_left_to_its_new_owner():
    stop, handled, moved = threading.Event(), [], []
    consumer = RebalancingConsumer(stop)
    run_loop("views-projector", lambda: consumer, TOPIC,
             lambda records: handled.extend((r.partition, r.offset) for r in records), stop, 500, Dependencies.fresh(),
             poll_timeout=0, on_moved=lambda: moved.append(True))
    assert moved, "the revoke was served"
    assert (1, 0) not in handled, "a record of a partition given up was handled by its old owner"
    assert handled == [(0, 0), (0, 1), (0, 2)]
    assert all(partition == 0 for partition, _offset in consumer.commits), "nothing committed for partition 1"
    assert (0, 3) in consumer.commits
