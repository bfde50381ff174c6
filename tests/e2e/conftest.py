"""An isolated running stack per test module: topics, database, producer and consumers of its own."""

import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from infra.process import ManagedProcess, wait_until
from tests.support.api import Api
from tests.support.services import BIN, service_env, start_consumer, start_producer


@dataclass
class Stack:
    """The processes and names of one running test stack."""

    kafka: str
    env: dict
    api: Api
    logs: Path
    topics: tuple[str, str]
    processes: list[ManagedProcess] = field(default_factory=list)

    def produce_raw(self, key: bytes | None, value: bytes, headers=None) -> tuple[int, int]:
        """Produce a record straight to the message topic, bypassing the API; return (partition, offset)."""
        producer = Producer({"bootstrap.servers": self.kafka, "acks": "all"})
        delivered = []
        producer.produce(self.topics[0], key=key, value=value, headers=headers or [],
                         on_delivery=lambda error, record: delivered.append((error, record)))
        producer.flush(10)
        [(error, record)] = delivered
        assert error is None, error
        return record.partition(), record.offset()

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """Run `consumer-service ARGS` against this stack and return what it printed."""
        return subprocess.run([str(BIN / "consumer-service"), *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    def all_messages(self, **filters) -> list[dict]:
        """Every stored message matching the filters, following the pages."""
        items, cursor = [], None
        while True:
            reply = self.api.get("/messages", limit=500, **filters, **({"cursor": cursor} if cursor else {}))
            assert reply.status == 200, reply.body
            items += reply.body
            link = reply.headers.get("Link")
            if not link:
                return items
            cursor = parse_qs(urlparse(link[link.index("<") + 1:link.index(">")]).query)["cursor"][0]

    def committed_past(self, group: str, partition: int, offset: int) -> bool:
        """Tell whether a consumer group has committed past a record of the message topic."""
        consumer = Consumer({"bootstrap.servers": self.kafka, "group.id": group})
        try:
            [position] = consumer.committed([TopicPartition(self.topics[0], partition)], timeout=10)
        finally:
            consumer.close()
        return position.offset > offset

    def dead_letters_of(self, offsets: set[tuple[int, int]], timeout: float = 30.0) -> dict:
        """Read the dead-letter topic until it holds a letter for every (partition, offset) of the message topic."""
        consumer = Consumer({"bootstrap.servers": self.kafka, "group.id": f"dlq-reader-{uuid.uuid4().hex}",
                             "auto.offset.reset": "earliest"})
        consumer.subscribe([self.topics[1]])
        found: dict = {}
        try:
            wait_until(lambda: _collect(consumer, found) >= offsets, timeout=timeout,
                       what=f"dead letters for {len(offsets)} records")
        finally:
            consumer.close()
        return {position: found[position] for position in offsets}


def _collect(consumer: Consumer, found: dict) -> set:
    """Poll a batch into `found`, keyed by original (partition, offset); return the keys."""
    for record in consumer.consume(500, 0.5):
        if record.error() is None:
            headers = dict(record.headers())
            found[(int(headers["dlq.original-partition"]), int(headers["dlq.original-offset"]))] = record
    return set(found)


@pytest.fixture(scope="module")
def stack_factory(kafka, tmp_path_factory):
    """Build stacks (torn down at module end): consumers for the given clients plus a producer."""
    stacks: list[Stack] = []

    def build(clients=("clientB",), mongo_uri: str | None = None, **overrides) -> Stack:
        suffix = uuid.uuid4().hex[:10]
        topics = (f"client-messages-{suffix}", f"client-messages-dlq-{suffix}")
        env = service_env(kafka.address, mongo_uri, f"e2e_{suffix}", topics, **overrides)
        logs = tmp_path_factory.mktemp(f"stack-{suffix}")
        consumers = [start_consumer(env, client, logs) for client in clients]
        producer, api = start_producer(env, logs)
        stack = Stack(kafka.address, env, api, logs, topics, consumers + [producer])
        stacks.append(stack)
        wait_until(lambda: api.get("/ready").status == 200, timeout=60, what="producer /ready", process=producer)
        return stack

    yield build
    for stack in stacks:
        for process in stack.processes:
            process.stop()
