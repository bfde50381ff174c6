"""Per-client consumers on the real broker and store: a key's partition, reading it alone, its count changing."""

import subprocess
import threading
import uuid
from datetime import datetime, timezone

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewPartitions
from prometheus_client import REGISTRY
from pymongo import MongoClient

from shared_adapters.kafka_connection import KafkaConnection
from consumer_service.application.records import OutgoingRecord
from consumer_service.config import load_settings
from consumer_service.entrypoints.bootstrap import create_topics, run_consumer_service
from consumer_service.entrypoints.dependencies import Dependencies
from consumer_service.entrypoints.loop import run_loop
from consumer_service.infrastructure.kafka_io import (PartitionsChanged, ServedPartition, ensure_topics, new_consumer,
                                                      new_reliable_producer, served_partition)
from infra.process import wait_until
from producer_service.infrastructure.kafka_publisher import KafkaPublisher, new_producer
from shared_domain.documents import MESSAGES_COLLECTION
from shared_domain.message import Message
from shared_domain.partitioning import PARTITIONER, partition_of
from tests.support.ledgers import LEDGERS
from tests.support.services import BIN, service_env
from tests.support.stack import committed_offset

NOW = datetime(2026, 4, 1, tzinfo=timezone.utc)
KEYS = [f"client{n}".encode() for n in range(150)] + [b"clientB", b"", b"\x00\xff" * 9, "klient\u00e9".encode()]


def partitions_of(delivered: list) -> list[tuple[bytes, int]]:
    """(key, partition) of each delivery report, failing on any error."""
    assert all(error is None for error, _record in delivered), delivered
    return [(record.key(), record.partition()) for _error, record in delivered]


def produce_keys(producer: Producer, topic: str) -> list[tuple[bytes, int]]:
    """Produce one record per key and return where each landed, sorted."""
    delivered = []
    for key in KEYS:
        producer.produce(topic, key=key, value=b"v",
                         on_delivery=lambda error, record: delivered.append((error, record)))
    assert producer.flush(20) == 0
    return sorted(partitions_of(delivered))


def test_librdkafka_murmur2_random_puts_every_key_where_partition_of_says(kafka, unique):
    topic = f"partitions-{unique}"
    ensure_topics(KafkaConnection(kafka.address), [topic], partitions=7, timeout=10)
    landed = produce_keys(Producer({"bootstrap.servers": kafka.address, "partitioner": PARTITIONER}), topic)
    assert len(landed) == len(KEYS)
    assert sorted((key, partition_of(key, 7)) for key in KEYS) == landed
    assert len({partition for _key, partition in landed}) == 7, "the keys cover every partition"
    # The setting matters: librdkafka's default (CRC32) puts most keys elsewhere.
    default = produce_keys(Producer({"bootstrap.servers": kafka.address}), topic)
    assert sum(a != b for a, b in zip(landed, default)) > len(KEYS) // 2


def test_the_services_producers_put_a_recipients_records_where_partition_of_says(kafka, unique):
    topic = f"partitions-{unique}"
    ensure_topics(KafkaConnection(kafka.address), [topic], partitions=7, timeout=10)
    recipients = [f"client{n}" for n in range(40)]
    publisher = KafkaPublisher(new_producer(KafkaConnection(kafka.address), 5000), topic,
                               batch_producer=new_producer(KafkaConnection(kafka.address), 5000, linger_ms=5))
    messages = [Message(f"m-{n}", "clientA", to, "hi", NOW) for n, to in enumerate(recipients)]
    try:
        receipts = publisher.publish(messages).result(timeout=10)
    finally:
        publisher.close()
    assert [receipt.partition for receipt in receipts] == [partition_of(to.encode(), 7) for to in recipients]
    # The dead-letter replay writes through the consumer service's reliable producer.
    replays = [OutgoingRecord(to.encode(), b"replayed", []) for to in recipients]
    replayer = new_reliable_producer(KafkaConnection(kafka.address), "dlq-operator", 5000)
    assert replayer.send(topic, replays, 10) == [None] * len(replays)
    landed = [(r.key(), r.partition()) for r in read_back(kafka, topic, 80) if r.value() == b"replayed"]
    assert sorted(landed) == sorted((r.key, partition_of(r.key, 7)) for r in replays)


def read_back(kafka, topic: str, count: int) -> list:
    """The first `count` records of a topic."""
    reader = Consumer({"bootstrap.servers": kafka.address, "group.id": f"reader-{uuid.uuid4().hex}",
                       "auto.offset.reset": "earliest"})
    reader.subscribe([topic])
    records: list = []
    try:
        wait_until(lambda: records.extend(r for r in reader.consume(100, 0.5) if r.error() is None)
                   or len(records) >= count, timeout=30, what=f"{count} records read back")
    finally:
        reader.close()
    return records


def consumer_settings(kafka, mongo, unique: str, client: str):
    """Settings of a consumer on topics and a database of the test's own, without the dead-letter projector."""
    return load_settings(client, {
        "KAFKA_BOOTSTRAP_SERVERS": kafka.address, "MONGODB_URI": mongo.address, "MONGODB_DATABASE": f"test_{unique}",
        "MESSAGES_TOPIC": f"messages-{unique}", "DEAD_LETTER_TOPIC": f"dlq-{unique}",
        "STORED_EVENTS_TOPIC": f"stored-{unique}", "PROJECT_DEAD_LETTERS": "0", "TOPIC_PARTITIONS": "3",
    })


def publish(kafka, topic: str, recipients: list[str], each: int) -> dict[str, list[str]]:
    """Publish `each` messages to every recipient through the producer service's publisher; their ids by recipient."""
    messages = [Message(f"m-{uuid.uuid4().hex}", "clientA", to, f"hello {to} {n}", NOW)
                for to in recipients for n in range(each)]
    publisher = KafkaPublisher(new_producer(KafkaConnection(kafka.address), 5000), topic)
    try:
        assert all(receipt.partition >= 0 for receipt in publisher.publish(messages).result(timeout=10))
    finally:
        publisher.close()
    return {to: [m.message_id for m in messages if m.recipient == to] for to in recipients}


def ends_of(kafka, topic: str, count: int) -> dict[int, int]:
    """The end offset of each partition."""
    consumer = Consumer({"bootstrap.servers": kafka.address, "group.id": f"ends-{uuid.uuid4().hex}"})
    try:
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(count)}
    finally:
        consumer.close()


def received(consumer: str) -> float:
    """Records the named consumer loop has handled in this process, whatever became of them."""
    return sum(REGISTRY.get_sample_value("consumer_records_total", {"consumer": consumer, "outcome": outcome}) or 0
               for outcome in ("stored", "skipped", "dead_lettered"))


def test_a_consumer_for_one_client_reads_and_commits_only_its_partition_and_stores_its_messages(kafka, mongo, unique,
                                                                                             caplog):
    settings = consumer_settings(kafka, mongo, unique, "clientB")
    topic, own = settings.messages_topic, partition_of(b"clientB", 3)
    assert create_topics(settings, threading.Event())
    # clientC shares clientB's partition among 3, clientA and clientZ are on another.
    sent = publish(kafka, topic, ["clientA", "clientB", "clientC", "clientZ"], each=25)
    ends, before, stop, exits = ends_of(kafka, topic, 3), received("consumer[clientB]"), threading.Event(), []
    caplog.set_level("INFO", logger="consumer_service")
    service = threading.Thread(target=lambda: exits.append(run_consumer_service(settings, stop)))
    service.start()
    try:
        wait_until(lambda: committed_offset(kafka.address, settings.group_id, topic, own) == ends[own], timeout=60,
                   what="clientB's partition committed to its end")
    finally:
        stop.set()
        service.join(30)
    assert exits == [0]
    committed = {p: committed_offset(kafka.address, settings.group_id, topic, p) for p in range(3)}
    assert {p for p, offset in committed.items() if offset >= 0} == {own}, "offsets committed for its partition alone"
    assert committed[own] == ends[own]
    probe = Consumer({"bootstrap.servers": kafka.address, "group.id": settings.group_id})
    try:
        [position] = probe.committed([TopicPartition(topic, own)], timeout=10)
    finally:
        probe.close()
    assert position.metadata == "partitions=3", "its commits say which partition count it served under"
    with MongoClient(mongo.address) as client:
        stored = client[settings.mongodb_database][MESSAGES_COLLECTION].find({}, {"messageId": 1, "to": 1})
        assert sorted(d["messageId"] for d in stored) == sorted(sent["clientB"]), "clientB's messages and no other"
    fetched, total = received("consumer[clientB]") - before, sum(ends.values())
    assert fetched == ends[own] < total, "it read clientB's partition and nothing else"
    serving = [r.getMessage() for r in caplog.records if "serving" in r.getMessage()]
    assert serving == [f"consumer[clientB]: serving {topic}[{own}] alone, the partition of its client among 3"]
    LEDGERS.append(f"ledger[per-client fetch]: consumer[clientB] read {fetched:.0f} of the topic's {total} records "
                   f"({fetched / total:.2f}), all of partition {own}; clientB's {len(sent['clientB'])} stored")


def produce_keyed(kafka, topic: str, key: bytes, count: int) -> None:
    """Make a 3-partition topic and put `count` records with one key in it, where murmur2 says."""
    ensure_topics(KafkaConnection(kafka.address), [topic], partitions=3, timeout=10)
    producer = Producer({"bootstrap.servers": kafka.address, "partitioner": PARTITIONER})
    for n in range(count):
        producer.produce(topic, key=key, value=str(n).encode())
    assert producer.flush(10) == 0


def grow(kafka, topic: str, partitions: int) -> None:
    """Give a topic more partitions, as an operator would."""
    admin = AdminClient({"bootstrap.servers": kafka.address})
    admin.create_partitions([NewPartitions(topic, partitions)])[topic].result(10)


def test_a_consumer_of_one_partition_stops_once_the_partition_count_changes(kafka, unique):
    topic, group = f"grow-{unique}", f"grow-group-{unique}"
    produce_keyed(kafka, topic, b"clientB", 10)
    own = partition_of(b"clientB", 3)
    handled, stop, raised = [], threading.Event(), []

    def serve():
        try:
            run_loop("grow-test", lambda: new_consumer(KafkaConnection(kafka.address), group, "grow-test"), topic,
                     handled.extend, stop, 500, Dependencies.fresh(), partition=ServedPartition(topic, own, 3),
                     partition_check_s=0.5)
        except PartitionsChanged as error:
            raised.append(str(error))

    loop = threading.Thread(target=serve)
    loop.start()
    try:
        wait_until(lambda: committed_offset(kafka.address, group, topic, own) == 10, timeout=30,
                   what="the records handled")
        grow(kafka, topic, 5)
        loop.join(20)
        assert not loop.is_alive(), "the loop stops by itself"
    finally:
        stop.set()
        loop.join(10)
    assert raised == [f"{topic} has 5 partitions now, not the 3 that put this consumer's client on [{own}]; stopping, "
                      "so that a restart reads the partition its messages go to now"]


def commit(kafka, group: str, topic: str, partition: int, offset: int, served_under: int | None = 2) -> None:
    """Commit an offset for a group, as an earlier consumer of it would have: one of a single partition among
    `served_under` partitions, or (None) a consumer of every partition, which records no count."""
    consumer = Consumer({"bootstrap.servers": kafka.address, "group.id": group})
    position = TopicPartition(topic, partition, offset)
    if served_under is not None:
        position = TopicPartition(topic, partition, offset, metadata=f"partitions={served_under}")
    try:
        consumer.commit(offsets=[position], asynchronous=False)
    finally:
        consumer.close()


def test_a_group_that_left_records_unread_on_another_partition_is_refused_until_they_are_read(kafka, unique):
    topic, group = f"moved-{unique}", f"moved-group-{unique}"
    ensure_topics(KafkaConnection(kafka.address), [topic], partitions=3, timeout=10)
    other = partition_of(b"clientA", 3)
    assert other != partition_of(b"clientB", 3)
    producer = Producer({"bootstrap.servers": kafka.address, "partitioner": PARTITIONER})
    for n in range(5):
        producer.produce(topic, key=b"clientA", value=str(n).encode())
    assert producer.flush(10) == 0
    served = ServedPartition(topic, partition_of(b"clientB", 3), 3)
    assert served_partition(KafkaConnection(kafka.address), group, topic, "clientB") == served, "a new group starts"
    commit(kafka, group, topic, other, 2)
    with pytest.raises(PartitionsChanged, match=rf"group {group} has records it never read on {topic} \[{other}\] "
                                                r"offsets 2 to 4, and clientB's messages now go to"):
        served_partition(KafkaConnection(kafka.address), group, topic, "clientB")
    commit(kafka, group, topic, other, 5)
    assert served_partition(KafkaConnection(kafka.address), group, topic, "clientB") == served, "an offset elsewhere, none unread"


def test_commits_of_a_consumer_of_every_partition_do_not_stop_a_per_client_consumer(kafka, unique):
    topic, group = f"upgraded-{unique}", f"upgraded-group-{unique}"
    produce_keyed(kafka, topic, b"clientA", 5)
    other = partition_of(b"clientA", 3)
    commit(kafka, group, topic, other, 2, served_under=None)  # the group consumer per-client deployments ran before
    served = ServedPartition(topic, partition_of(b"clientB", 3), 3)
    assert served_partition(KafkaConnection(kafka.address), group, topic, "clientB") == served
    commit(kafka, group, topic, served.number, 0, served_under=3)  # what it commits itself
    assert served_partition(KafkaConnection(kafka.address), group, topic, "clientB") == served, "its own count: nothing moved"


def consumer_process_env(kafka, mongo, unique: str) -> dict:
    """The environment of a `consumer-service run` on the test's own topics and database."""
    return service_env(kafka.address, mongo.address, f"test_{unique}", (f"messages-{unique}", f"dlq-{unique}"),
                       PROJECT_DEAD_LETTERS="0", LOG_FORMAT="text")


def test_the_consumer_service_refuses_to_start_with_one_line_and_exit_2_when_records_wait_elsewhere(kafka, mongo,
                                                                                                     unique):
    env = consumer_process_env(kafka, mongo, unique)
    topic, group = env["MESSAGES_TOPIC"], f"{env['MESSAGES_TOPIC']}.for.clientB"
    ensure_topics(KafkaConnection(kafka.address), [topic], partitions=3, timeout=10)
    other = partition_of(b"clientA", 3)
    producer = Producer({"bootstrap.servers": kafka.address, "partitioner": PARTITIONER})
    producer.produce(topic, key=b"clientA", value=b"x")
    assert producer.flush(10) == 0
    commit(kafka, group, topic, other, 0)
    run = subprocess.run([str(BIN / "consumer-service"), "run", "--client", "clientB"], env=env, capture_output=True,
                         text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert run.returncode == 2, run.stderr
    refusals = [line for line in run.stderr.splitlines() if "never read" in line]
    assert len(refusals) == 1 and "not starting" in refusals[0] and "Traceback" not in run.stderr, run.stderr
    assert committed_offset(kafka.address, group, topic, partition_of(b"clientB", 3)) < 0, "it read nothing"


def test_the_consumer_service_exits_2_with_one_line_when_its_topic_gets_more_partitions(kafka, mongo, unique, tmp_path):
    env = {**consumer_process_env(kafka, mongo, unique), "PARTITION_CHECK_S": "1"}
    topic = env["MESSAGES_TOPIC"]
    log = tmp_path / "consumer.log"
    with log.open("w") as output:
        process = subprocess.Popen([str(BIN / "consumer-service"), "run", "--client", "clientB"], env=env,
                                   stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        wait_until(lambda: f"serving {topic}[" in log.read_text(), timeout=60,
                   what="the consumer serving its partition")
        grow(kafka, topic, 4)
        assert process.wait(timeout=30) == 2
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    stopping = [line for line in log.read_text().splitlines() if "partitions now" in line]
    assert len(stopping) == 1 and "has 4 partitions now, not the 3" in stopping[0], log.read_text()


def test_a_consumer_starting_before_its_topic_is_known_waits_for_it_rather_than_fail(kafka, unique):
    topic = f"late-{unique}"
    # As on a cluster whose broker has not yet heard of a topic just created, the topic appears a moment later.
    creator = threading.Timer(1.0, ensure_topics, args=(KafkaConnection(kafka.address), [topic]),
                              kwargs={"partitions": 5, "timeout": 10})
    creator.start()
    try:
        served = served_partition(KafkaConnection(kafka.address), f"late-{unique}", topic, "clientB", timeout=20)
    finally:
        creator.join()
    assert (served.count, served.number) == (5, partition_of(b"clientB", 5))
