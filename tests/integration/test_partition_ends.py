"""Partition ends looked up on the real broker judge claimed positions in a topic."""

from confluent_kafka import Consumer, Producer

from shared_adapters.kafka_connection import KafkaConnection
from consumer_service.infrastructure.kafka_io import ensure_topics
from shared_adapters.kafka_partition_ends import partition_ends
from shared_domain.failures import SourcePosition
from shared_domain.plausibility import SourceCheck


def test_ends_are_each_partitions_high_watermark_and_a_missing_partition_has_none(kafka, unique):
    topic = f"ends-{unique}"
    ensure_topics(KafkaConnection(kafka.address), [topic], partitions=2, timeout=10)
    producer = Producer({"bootstrap.servers": kafka.address, "acks": "all"})
    for _ in range(3):
        producer.produce(topic, value=b"x", partition=1)
    assert producer.flush(10) == 0
    consumer = Consumer({"bootstrap.servers": kafka.address, "group.id": f"ends-{unique}"})
    try:
        look_up = partition_ends(consumer, topic, timeout_s=10)
        assert look_up({0, 1, 5}) == {0: 0, 1: 3, 5: None}
        check = SourceCheck(topic, look_up)
        assert [p is None for p in check.judge([SourcePosition(topic, 1, 2), SourcePosition(topic, 1, 3),
                                                 SourcePosition(topic, 0, 0), SourcePosition(topic, 5, 0)])] == [
            True, False, False, False]
        assert partition_ends(consumer, f"absent-{unique}", timeout_s=5)({0}) == {}, "an unknown topic: nothing known"
    finally:
        consumer.close()
