"""Partition ends looked up on the real broker judge claimed positions in a topic."""

import threading
import time

from confluent_kafka import Consumer, Producer

from shared_adapters.kafka_connection import KafkaConnection
from consumer_service.infrastructure.kafka_io import ensure_topics
from infra.process import wait_until
from shared_adapters.kafka_partition_ends import lookup_client, partition_ends
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


def test_ends_are_looked_up_while_a_group_consumer_waits_for_them_in_its_revoke_callback(kafka, unique):
    # A projector's revoke callback waits for the batch in hand, whose check looks ends up on another thread: asked
    # through the group consumer itself, that look-up does not answer until the callback returns (a deadlock).
    topic, connection = f"ends-{unique}", KafkaConnection(kafka.address)
    ensure_topics(connection, [topic], partitions=3, timeout=10)
    group = {"bootstrap.servers": kafka.address, "group.id": f"ends-{unique}", "auto.offset.reset": "earliest",
             "partition.assignment.strategy": "cooperative-sticky", "enable.auto.commit": False}
    first, second, client = Consumer(group), Consumer(group), lookup_client(connection, "ends", f"ends-{unique}")
    look_up, answers = partition_ends(client, topic, timeout_s=5), []

    def on_revoke(_consumer, partitions):
        if partitions:
            began, looking = time.monotonic(), threading.Thread(target=lambda: answers.append(look_up({0, 1, 2})))
            looking.start()
            looking.join(15)
            answers.append(time.monotonic() - began)

    try:
        first.subscribe([topic], on_revoke=on_revoke)
        wait_until(lambda: first.poll(0.2) is None and len(first.assignment()) == 3, timeout=30, what="all partitions")
        second.subscribe([topic])
        wait_until(lambda: (first.poll(0.2), second.poll(0.2)) and answers, timeout=60, what="a revoke")
    finally:
        for closing in (first, second, client):
            closing.close()
    assert answers[0] == {0: 0, 1: 0, 2: 0}, "the ends, looked up while the callback waited"
    assert answers[1] < 15, "the look-up answered before the callback stopped waiting"
