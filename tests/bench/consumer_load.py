"""The consumer figure: draining a backlog into the store, against a raw insert_many of the same documents."""

import statistics
import time
import uuid
from pathlib import Path

from confluent_kafka import Producer
from pymongo import ASCENDING, DESCENDING, MongoClient

from shared_adapters.kafka_connection import read_kafka_connection
from consumer_service.infrastructure.kafka_io import ensure_topics
from consumer_service.infrastructure.mongo_store import ensure_indexes
from infra.process import wait_until
from shared_domain.clock import utc_now
from shared_domain.documents import MESSAGES_COLLECTION, message_document
from shared_domain.envelope import CONTENT_TYPE, CONTENT_TYPE_HEADER, encode
from shared_domain.failures import SourcePosition
from shared_domain.message import ClientId, Message, MessageText, new_message_id
from shared_domain.partitioning import PARTITIONER
from tests.support.services import start_consumer

from .cpu import CpuSince, bounds, group_cpu_seconds
from .progress import CommittedProgress
from .verdict import verdict


def run(env: dict, logs: Path, mongo_uri: str, rounds: int, count: int, mongo_pid: int, batch: int = 500) -> float:
    """Fill a topic with `count` messages, then interleave raw inserts and consumer runs; print the medians."""
    topic = f"bench-backlog-{uuid.uuid4().hex[:8]}"
    ensure_topics(read_kafka_connection(env), [topic], 3, timeout=30)
    messages = [Message(new_message_id(), ClientId(f"client{n % 10}"), ClientId(f"client{n % 7}"),
                        MessageText(f"backlog message {n} of ordinary length"), utc_now()) for n in range(count)]
    _produce(env["KAFKA_BOOTSTRAP_SERVERS"], topic, messages)
    client = MongoClient(mongo_uri, tz_aware=True)
    raw, ours = [], []
    try:
        for round_ in range(rounds):
            raw.append(_raw_insert(client[f"bench_raw_{round_}_{uuid.uuid4().hex[:6]}"], messages, topic, batch, mongo_pid))
            ours.append(_consume(env, logs, client, topic, count, round_, mongo_pid))
    finally:
        client.close()
    rate, baseline = statistics.median(run[0] for run in ours), statistics.median(run[0] for run in raw)
    ratio = rate / baseline
    print(f"consumer backlog ({count}):  {rate:6.0f} docs/s   raw insert_many ({batch}/batch, same indexes) "
          f"{baseline:6.0f} docs/s   ratio {ratio:.3f}x (target >= 0.85x: {verdict(ratio >= 0.85)})")
    print(f"{'':24} CPU per document: consumer {statistics.median(run[1] for run in ours):.0f} us, store "
          f"{statistics.median(run[2] for run in ours):.0f} us; raw: inserting client "
          f"{statistics.median(run[1] for run in raw):.0f} us, store {statistics.median(run[2] for run in raw):.0f} us")
    print(f"{'':24} ours {ours[-1][3]}")
    return ratio


def _produce(bootstrap: str, topic: str, messages: list[Message]) -> None:
    """Write the messages to the topic as the producer service would, keyed by recipient."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 20, "partitioner": PARTITIONER})
    headers = [(CONTENT_TYPE_HEADER, CONTENT_TYPE.encode())]
    for message in messages:
        while True:
            try:
                producer.produce(topic, key=message.recipient.encode(), value=encode(message), headers=headers)
                break
            except BufferError:
                producer.poll(0.1)
    if producer.flush(60):
        raise RuntimeError("the backlog was not acknowledged by the broker")


def _raw_insert(database, messages: list[Message], topic: str, batch: int, mongo_pid: int) -> tuple[float, float, float]:
    """Documents per second of insert_many straight into a fresh collection with the service's indexes,
    and the CPU microseconds per document of this client and of the store."""
    ensure_indexes(database)
    documents = [message_document(message, SourcePosition(topic, 0, n), utc_now()) for n, message in enumerate(messages)]
    began, own, store = time.perf_counter(), time.process_time(), group_cpu_seconds(mongo_pid)
    for first in range(0, len(documents), batch):
        database[MESSAGES_COLLECTION].insert_many(documents[first:first + batch], ordered=False)
    took = time.perf_counter() - began
    per_document = lambda seconds: seconds / len(documents) * 1e6
    return (len(documents) / took, per_document(time.process_time() - own),
            per_document(group_cpu_seconds(mongo_pid) - store))


def _consume(env: dict, logs: Path, client: MongoClient, topic: str, count: int, round_: int,
             mongo_pid: int) -> tuple[float, float, float, str]:
    """Documents per second a consumer for all clients stores the backlog at, from its own storedAt stamps; the CPU
    microseconds per document of the consumer and the store, and what bounded it.

    The span runs from the first batch's stamp to the last one's, so process start-up and the
    polling of this function are not counted; the last batch's documents are left out with it.
    CPU per document (consumer, store) is counted from the first stored document on.
    """
    database = f"bench_consumer_{round_}_{uuid.uuid4().hex[:6]}"
    consumer = start_consumer({**env, "MESSAGES_TOPIC": topic, "MONGODB_DATABASE": database,
                               "CONSUMER_GROUP_ID": f"bench-{database}", "PROJECT_DEAD_LETTERS": "0",
                               "PROJECT_VIEWS": "0"},  # storing alone: the views' pace is the scale stage's
                              "*", logs, name=f"backlog-consumer-{round_}")
    messages = client[database][MESSAGES_COLLECTION]
    # Progress is read from the group's commits: counting documents would cost the store more than the inserts.
    progress = CommittedProgress(env["KAFKA_BOOTSTRAP_SERVERS"], f"bench-{database}", topic)
    try:
        wait_until(lambda: progress.committed() > 0, timeout=60, interval=0.02, what="the first commit", process=consumer)
        already, meter = progress.committed(), CpuSince({"consumer": consumer.pid, "store": mongo_pid})
        wait_until(lambda: progress.committed() >= count, timeout=300, interval=0.1,
                   what=f"{count} messages committed", process=consumer)
        spent, machine, seconds = meter.read()
        own, store, bound = spent["consumer"], spent["store"], bounds(spent, seconds, machine)
    finally:
        progress.close()
        consumer.stop()
    first = messages.find_one({}, sort=[("storedAt", ASCENDING)])["storedAt"]
    last = messages.find_one({}, sort=[("storedAt", DESCENDING)])["storedAt"]
    in_last_batch = messages.count_documents({"storedAt": last})
    per_document = lambda seconds: seconds / (count - already) * 1e6
    return (count - in_last_batch) / (last - first).total_seconds(), per_document(own), per_document(store), bound
