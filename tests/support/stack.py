"""An isolated running stack: topics, database, producer and consumers of its own."""

import string
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from confluent_kafka import Consumer, Producer, TopicPartition

from infra.process import ManagedProcess, wait_until
from shared_adapters.kafka_connection import read_kafka_connection
from shared_domain.partitioning import PARTITIONER
from tests.support.api import Api
from tests.support.services import BIN, service_env, start_consumer, start_operator, start_producer


@dataclass
class Stack:
    """The processes and names of one running test stack."""

    kafka: str
    env: dict
    api: Api
    logs: Path
    topics: tuple[str, str]
    processes: list[ManagedProcess] = field(default_factory=list)
    operator: Api | None = None  # the operator server: dead-letter API and console

    @property
    def producer(self) -> ManagedProcess:
        """The producer's gunicorn master."""
        return next(process for process in self.processes if process.name == "producer")

    @property
    def kafka_properties(self) -> dict[str, str]:
        """The librdkafka security settings the stack's services connect with (none for a plaintext broker)."""
        return dict(read_kafka_connection(self.env).properties)

    def produce_raw(self, key: bytes | None, value: bytes, headers=None) -> tuple[int, int]:
        """Produce a record straight to the message topic, bypassing the API; return (partition, offset)."""
        producer = Producer({"bootstrap.servers": self.kafka, **self.kafka_properties, "acks": "all",
                             "partitioner": PARTITIONER})
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
        return self._all("/messages", filters)

    def all_messages_as(self, client: str, **filters) -> list[dict]:
        """Every message `client` may see that matches the filters, following the pages with its token."""
        return self._all("/messages", filters, self.api.as_(client))

    def all_failures(self, **filters) -> list[dict]:
        """Every failed record matching the filters (any status), following the pages."""
        return self._all("/failed-messages", filters)

    def _all(self, path: str, filters: dict, headers: dict | None = None) -> list[dict]:
        """Every item of a paged list."""
        items, cursor = [], None
        while True:
            reply = self.api.get(path, headers, limit=500, **filters, **({"cursor": cursor} if cursor else {}))
            assert reply.status == 200, reply.body
            items += reply.body
            link = reply.headers.get("Link")
            if not link:
                return items
            cursor = parse_qs(urlparse(link[link.index("<") + 1:link.index(">")]).query)["cursor"][0]

    def dead_letter_count(self) -> int:
        """How many records the dead-letter topic holds."""
        consumer = Consumer({"bootstrap.servers": self.kafka, **self.kafka_properties,
                             "group.id": f"counter-{uuid.uuid4().hex}"})
        try:
            partitions = consumer.list_topics(self.topics[1], timeout=10).topics[self.topics[1]].partitions
            return sum(consumer.get_watermark_offsets(TopicPartition(self.topics[1], p), timeout=10)[1] for p in partitions)
        finally:
            consumer.close()

    def stored_count(self) -> int:
        """How many messages the store holds (read straight from the database)."""
        from pymongo import MongoClient

        with MongoClient(self.env["MONGODB_URI"], serverSelectionTimeoutMS=2000) as client:
            return client[self.env["MONGODB_DATABASE"]].messages.count_documents({})

    def dead_letters_of(self, offsets: set[tuple[int, int]], timeout: float = 30.0) -> dict:
        """Read the dead-letter topic until it holds a letter for every (partition, offset) of the message topic."""
        return dead_letters_of(self.kafka, self.topics[1], offsets, timeout, self.kafka_properties)


def committed_offset(kafka: str, group: str, topic: str, partition: int) -> int:
    """The offset a consumer group has committed on a partition (negative when it committed nothing)."""
    consumer = Consumer({"bootstrap.servers": kafka, "group.id": group})
    try:
        [position] = consumer.committed([TopicPartition(topic, partition)], timeout=10)
    finally:
        consumer.close()
    return position.offset


def dead_letters_of(kafka: str, topic: str, offsets: set[tuple[int, int]], timeout: float,
                    properties: dict[str, str] | None = None) -> dict:
    """Read a dead-letter topic until it holds a letter for every (partition, offset) of the message topic."""
    consumer = Consumer({"bootstrap.servers": kafka, **(properties or {}), "group.id": f"dlq-reader-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
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


def build_stack(kafka: str, mongo_uri: str, clients, logs: Path, **overrides) -> Stack:
    """Start consumers for `clients`, a producer and the operator server on fresh topics and database; wait until /ready.

    clientA to clientZ and an operator are registered, and the stack's Api carries their tokens.
    """
    suffix = uuid.uuid4().hex[:10]
    topics = (f"client-messages-{suffix}", f"client-messages-dlq-{suffix}")
    env = service_env(kafka, mongo_uri, f"test_{suffix}", topics, **overrides)
    tokens = register(mongo_uri, f"test_{suffix}", [f"client{letter}" for letter in string.ascii_uppercase])
    consumers = [start_consumer(env, client, logs) for client in clients]
    producer, api = start_producer(env, logs, tokens)
    stack = Stack(kafka, env, api, logs, topics, consumers + [producer])
    try:
        operator_process, stack.operator = start_operator(env, logs, tokens)
        stack.processes.append(operator_process)
        wait_until(lambda: api.get("/ready").status == 200, timeout=60, what="producer /ready", process=producer)
    except BaseException:
        for process in stack.processes:
            process.stop()
        raise
    return stack


def register(mongo_uri: str, database: str, clients: list[str], operator: bool = True) -> dict[str, str]:
    """Register the clients (and, unless told not to, an operator `ops`) in a database; return {name: token}."""
    from pymongo import MongoClient

    from shared_adapters.mongo_identities import MongoIdentityRegistry
    from shared_domain.identity import CLIENT, OPERATOR

    with MongoClient(mongo_uri, serverSelectionTimeoutMS=5000) as client:
        registry = MongoIdentityRegistry(client[database])
        tokens = {}
        for role, name in [*((CLIENT, name) for name in clients), *([(OPERATOR, "ops")] if operator else [])]:
            registry.add(role, name)
            tokens[name] = registry.issue_token(role, name, "tests")[1]
    return tokens
