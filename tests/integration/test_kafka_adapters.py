"""The confluent-kafka adapters against the real broker."""

import threading
import time
from datetime import datetime, timezone

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, ConfigResource

from shared_adapters.kafka_connection import KafkaConnection
from consumer_service.application.errors import DeadLetterUnavailable, StoredEventsUnavailable
from consumer_service.application.records import DeadLetter, IncomingRecord
from consumer_service.infrastructure.kafka_io import (DEAD_LETTER_MAX_BYTES, KafkaDeadLetterSink, KafkaStoredEventSink,
                                                      Replication, dead_letter_topic_config, ensure_topics,
                                                      new_consumer, new_reliable_producer, to_incoming)
from consumer_service.infrastructure.kafka_dead_letters import TRUNCATED_HEADER
from infra.process import free_ports
from producer_service.application.ports import BrokerUnavailable
from producer_service.infrastructure.kafka_publisher import KafkaPublisher, new_producer
from shared_adapters.kafka_orphans import Renewing, drain
from shared_domain.envelope import decode, encode
from shared_domain.failures import Failure
from shared_domain.message import Message
from shared_domain.stored_events import decode_stored_event
from tests.support.orphans import ReportsOrphaned
from tests.support.raw_kafka import produce_with_raw_header_names

NOW = datetime(2026, 4, 1, tzinfo=timezone.utc)


@pytest.fixture
def topic(kafka, unique):
    """A fresh topic with three partitions."""
    name = f"test-{unique}"
    ensure_topics(KafkaConnection(kafka.address), [name], partitions=3, timeout=10)
    return name


def read_all(bootstrap: str, topic: str, count: int, deadline: float = 20.0) -> list:
    """Read `count` records from the start of a topic, or fail at the deadline."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{topic}", "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    records, end = [], time.monotonic() + deadline
    try:
        while len(records) < count and time.monotonic() < end:
            record = consumer.poll(0.5)
            if record is not None and record.error() is None:
                records.append(record)
    finally:
        consumer.close()
    assert len(records) == count, f"read {len(records)} of {count} records from {topic}"
    return records


def test_topics_get_as_many_replicas_as_the_cluster_has_up_to_three(kafka, unique):
    name = f"replicated-{unique}"
    ensure_topics(KafkaConnection(kafka.address), [name], partitions=2, timeout=10)
    admin = AdminClient({"bootstrap.servers": kafka.address})
    brokers = len(admin.list_topics(timeout=10).brokers)
    partitions = admin.list_topics(name, timeout=10).topics[name].partitions
    assert {len(partition.replicas) for partition in partitions.values()} == {min(3, brokers)}
    [described] = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, name)]).values()
    assert described.result(10)["min.insync.replicas"].value == ("2" if brokers >= 3 else "1")


@pytest.mark.parametrize("replication, brokers, expected", [
    (Replication(), 1, (1, 1)), (Replication(), 3, (3, 2)), (Replication(), 5, (3, 2)),
    (Replication(factor=2), 3, (2, 1)), (Replication(factor=3, min_insync=3), 5, (3, 3)),
])
def test_the_replication_chosen_for_a_cluster(replication, brokers, expected):
    assert replication.of(brokers) == expected


def test_creating_topics_twice_is_harmless(kafka, topic):
    ensure_topics(KafkaConnection(kafka.address), [topic], partitions=3, timeout=10)


def test_a_published_message_is_acknowledged_keyed_by_recipient(kafka, topic):
    publisher = KafkaPublisher(new_producer(KafkaConnection(kafka.address), 5000), topic)
    message = Message("m-1", "clientA", "clientB", "hello", NOW)
    try:
        [receipt] = publisher.publish([message], trace_id="trace-1").result(timeout=10)
        assert publisher.is_reachable(2.0)
    finally:
        publisher.close()
    [record] = read_all(kafka.address, topic, 1)
    assert (record.partition(), record.offset()) == (receipt.partition, receipt.offset)
    assert record.key() == b"clientB" and decode(record.value()) == message
    assert dict(record.headers()) == {"content-type": b"application/json", "trace-id": b"trace-1"}


def test_a_publisher_whose_producer_is_orphaned_publishes_on_through_a_new_one(kafka, topic):
    producers, orphan = [], threading.Event()

    def connect():
        producers.append(new_producer(KafkaConnection(kafka.address), 5000))
        first = len(producers) == 1
        return ReportsOrphaned(producers[-1], lambda: first and orphan.is_set())

    publisher = KafkaPublisher(Renewing(connect, "producer-test", retire=lambda producer, name: drain(producer, name, 6)),
                               topic)
    try:
        [before] = publisher.publish([Message("m-before", "clientA", "clientB", "hello", NOW)]).result(timeout=10)
        orphan.set()
        [after] = publisher.publish([Message("m-after", "clientA", "clientB", "hello", NOW)]).result(timeout=10)
    finally:
        publisher.close()
    assert len(producers) == 2, "the orphaned producer was replaced"
    assert not isinstance(before, BrokerUnavailable) and not isinstance(after, BrokerUnavailable)
    assert [decode(record.value()).message_id for record in read_all(kafka.address, topic, 2)] == ["m-before", "m-after"]


def test_a_batch_goes_through_the_batch_producer_and_every_message_gets_its_own_receipt(kafka, topic):
    # The lone-message producer points nowhere, so only the batch producer can have delivered the batch.
    nowhere = new_producer(KafkaConnection(f"127.0.0.1:{free_ports(1)[0]}"), 1000)
    publisher = KafkaPublisher(nowhere, topic, batch_producer=new_producer(KafkaConnection(kafka.address), 5000, linger_ms=5))
    batch = [Message(f"m-{n}", "clientA", f"client{n % 3}", f"hello {n}", NOW) for n in range(50)]
    try:
        receipts = publisher.publish(batch, trace_id="trace-b").result(timeout=10)
        [lone] = publisher.publish([Message("m-lone", "clientA", "clientB", "alone", NOW)]).result(timeout=10)
        assert isinstance(lone, BrokerUnavailable)
    finally:
        publisher.close(timeout=1)
    assert all(not isinstance(receipt, BrokerUnavailable) for receipt in receipts)
    by_position = {(record.partition(), record.offset()): decode(record.value())
                   for record in read_all(kafka.address, topic, 50)}
    assert [by_position[(receipt.partition, receipt.offset)] for receipt in receipts] == batch


def test_an_unreachable_broker_fails_a_publish_within_the_delivery_timeout():
    publisher = KafkaPublisher(new_producer(KafkaConnection(f"127.0.0.1:{free_ports(1)[0]}"), 1000), "nowhere")
    started = time.monotonic()
    try:
        [outcome] = publisher.publish([Message("m-1", "clientA", "clientB", "hello", NOW)]).result(timeout=10)
        assert isinstance(outcome, BrokerUnavailable) and "timed out" in str(outcome)
        assert not publisher.is_reachable(0.5)
    finally:
        publisher.close(timeout=1)
    assert time.monotonic() - started < 10


def test_dead_letters_are_written_with_original_and_context_headers(kafka, topic):
    producer = new_reliable_producer(KafkaConnection(kafka.address), "test-dlq", 5000)
    original = IncomingRecord("client-messages", 1, 17, b"clientB", b"\x00poison", [("trace-id", b"t-1")])
    KafkaDeadLetterSink(producer, topic, 10).send_all([DeadLetter(original, Failure("UndecodableRecord", "bad", 1, NOW), "clientB")])
    [record] = read_all(kafka.address, topic, 1)
    headers = dict(record.headers())
    assert (record.key(), record.value()) == (b"clientB", b"\x00poison")
    assert headers["trace-id"] == b"t-1" and headers["dlq.original-offset"] == b"17"


def test_an_unreachable_dead_letter_topic_raises_instead_of_losing_the_record():
    producer = new_reliable_producer(KafkaConnection(f"127.0.0.1:{free_ports(1)[0]}"), "test-dlq", 1000)
    original = IncomingRecord("client-messages", 0, 1, None, b"x", [])
    with pytest.raises(DeadLetterUnavailable):
        KafkaDeadLetterSink(producer, "dlq", 2).send_all([DeadLetter(original, Failure("X", "y", 1, NOW), "c")])


def test_stored_events_are_keyed_by_recipient_and_carry_the_message_its_source_and_trace(kafka, topic):
    producer = new_reliable_producer(KafkaConnection(kafka.address), "test-events", 5000)
    message = Message("m-9", "clientA", "clientB", "hello", NOW)
    original = IncomingRecord("client-messages", 2, 40, b"clientB", encode(message), [("trace-id", b"t-9")])
    KafkaStoredEventSink(producer, topic, 10).publish_stored([(original, message)])()  # published, then acknowledged
    [record] = read_all(kafka.address, topic, 1)
    event = decode_stored_event(record.value())
    assert record.key() == b"clientB" and dict(record.headers())["trace-id"] == b"t-9"
    assert (event.message, event.source) == (message, original.position)


def test_an_unreachable_stored_events_topic_raises_so_the_batch_is_not_committed():
    producer = new_reliable_producer(KafkaConnection(f"127.0.0.1:{free_ports(1)[0]}"), "test-events", 1000)
    message = Message("m-1", "clientA", "clientB", "hello", NOW)
    acknowledged = KafkaStoredEventSink(producer, "events", 2).publish_stored(
        [(IncomingRecord("t", 0, 1, None, b"x", []), message)])
    with pytest.raises(StoredEventsUnavailable):
        acknowledged()
    with pytest.raises(StoredEventsUnavailable):
        acknowledged()  # asked again (the loop may), the same answer


def test_every_record_with_a_header_name_that_is_not_utf8_converts_with_a_defect(kafka, topic):
    # Many in a row: the client's unchecked error used to surface only once the call site was specialised.
    records = [(b"%d" % n, b"v", [(b"\xff\xfe" if n % 2 else b"trace-id", b"x")]) for n in range(60)]
    produce_with_raw_header_names(kafka.address, topic, records)
    converted = [to_incoming(record) for record in read_all(kafka.address, topic, len(records))]
    unreadable = {int(record.key) for record in converted if record.defect}
    assert unreadable == {n for n in range(60) if n % 2}
    assert all(record.headers == [("trace-id", b"x")] for record in converted if not record.defect)


def dead_letter_of_size(size: int) -> DeadLetter:
    """A dead letter whose original value has `size` bytes."""
    original = IncomingRecord("client-messages", 0, 42, b"clientB", b"\xff" * size, [("trace-id", b"t")])
    return DeadLetter(original, Failure("UndecodableRecord", "not JSON", 1, NOW), "clientB")


def test_the_dead_letter_topic_takes_whole_any_record_the_message_topic_accepts(kafka, unique):
    dlq = f"dlq-{unique}"
    ensure_topics(KafkaConnection(kafka.address), [dlq], partitions=1, timeout=10, configs={dlq: dead_letter_topic_config()})
    producer = new_reliable_producer(KafkaConnection(kafka.address), "test-dlq", 10000, max_message_bytes=DEAD_LETTER_MAX_BYTES)
    KafkaDeadLetterSink(producer, dlq, 20).send_all([dead_letter_of_size(1_048_000)])  # the broker's default limit
    [record] = read_all(kafka.address, dlq, 1)
    assert len(record.value()) == 1_048_000 and TRUNCATED_HEADER not in dict(record.headers())


def test_a_dead_letter_too_large_for_its_topic_is_written_truncated_and_says_so(kafka, unique):
    dlq = f"dlq-{unique}"
    ensure_topics(KafkaConnection(kafka.address), [dlq], partitions=1, timeout=10, configs={dlq: {"max.message.bytes": "150000"}})
    producer = new_reliable_producer(KafkaConnection(kafka.address), "test-dlq", 10000, max_message_bytes=DEAD_LETTER_MAX_BYTES)
    KafkaDeadLetterSink(producer, dlq, 20).send_all([dead_letter_of_size(400_000)])
    [record] = read_all(kafka.address, dlq, 1)
    headers = dict(record.headers())
    assert len(record.value()) == 64 * 1024 and record.value() == b"\xff" * 64 * 1024
    assert b"400000" in headers[TRUNCATED_HEADER] and headers["dlq.original-offset"] == b"42"


def test_a_gathering_consumer_gets_records_sent_one_by_one_in_few_batches(kafka, topic):
    consumer = new_consumer(KafkaConnection(kafka.address), f"gatherer-{topic}", "gatherer", gather_ms=1000)
    assigned = []
    consumer.subscribe([topic], on_assign=lambda _consumer, partitions: assigned.extend(partitions))
    producer = Producer({"bootstrap.servers": kafka.address, "linger.ms": 0})
    batches, end = [], time.monotonic() + 20
    try:
        producer.produce(topic, key=b"k", value=b"first")
        producer.flush(5)
        while consumer.poll(0.1) is None and time.monotonic() < end:
            pass  # read once: from now on the consumer fetches at the end of the partition
        assert assigned, "the consumer was given no partition"

        def send_one_by_one():
            for n in range(20):  # 10 ms apart: a fetch answered at the first record would bring one or two
                producer.produce(topic, key=b"k", value=b"%d" % n)
                producer.flush(5)
                time.sleep(0.01)

        sender = threading.Thread(target=send_one_by_one)
        sender.start()
        while sum(batches) < 20 and time.monotonic() < end:
            first = consumer.poll(0.5)
            if first is not None:
                batches.append(1 + len(consumer.consume(num_messages=100, timeout=0)))
        sender.join()
    finally:
        consumer.close()
    assert sum(batches) == 20 and len(batches) <= 3, f"records came in batches of {batches}"
