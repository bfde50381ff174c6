"""The live feed of an API process starts by itself once its topic is there, so that no stream waits for it, and
never once the process is stopping."""

import logging
import threading

import pytest

from consumer_service.infrastructure.kafka_io import ensure_topics
from infra.process import wait_until
from producer_service.application.live import Hub
from producer_service.infrastructure.kafka_stored_events import FeedUnavailable, StoredEventFeed
from shared_adapters.kafka_connection import KafkaConnection


def test_a_feed_whose_topic_is_not_there_yet_starts_reading_once_it_is_created_without_a_stream(kafka, unique, caplog):
    connection = KafkaConnection(kafka.address)
    stored, messages = f"stored-{unique}", f"messages-{unique}"
    ensure_topics(connection, [messages], partitions=2, timeout=10)
    feed = StoredEventFeed(connection, stored, Hub(per_client=1, capacity=10), messages, timeout_s=2)
    caplog.set_level(logging.INFO, logger="producer_service.infrastructure.kafka_stored_events")
    try:
        feed.start_soon(retry_s=0.05, most_s=0.2)
        wait_until(lambda: "live feed not started yet" in caplog.text, timeout=10, what="a first attempt, failed: no topic")
        ensure_topics(connection, [stored], partitions=2, timeout=10)
        wait_until(lambda: feed.read_up_to() == {0: 0, 1: 0}, timeout=30, interval=0.1,
                   what="the feed reading both partitions of its new topic, started by no stream")
    finally:
        feed.close()


def test_a_closed_feed_starts_nothing_whoever_asks(kafka, unique):
    connection = KafkaConnection(kafka.address)
    stored, messages = f"stored-{unique}", f"messages-{unique}"
    ensure_topics(connection, [stored, messages], partitions=1, timeout=10)
    feed = StoredEventFeed(connection, stored, Hub(per_client=1, capacity=10), messages, timeout_s=2)
    feed.close()
    with pytest.raises(FeedUnavailable, match="closed"):
        feed.ensure_started()  # a stream, or the background start, after the process began to stop
    assert feed.read_up_to() == {}, "no partition read"


def test_while_kafka_does_not_answer_a_start_others_are_refused_in_time_and_where_the_feed_read_is_told(kafka, unique):
    connection = KafkaConnection(kafka.address)
    stored, messages = f"stored-{unique}", f"messages-{unique}"
    ensure_topics(connection, [stored, messages], partitions=1, timeout=10)
    feed = StoredEventFeed(connection, stored, Hub(per_client=1, capacity=10), messages, timeout_s=2)
    answer, asked = threading.Event(), threading.Event()
    look_up_ends = feed._ends

    def ends_once_kafka_answers(consumer):
        asked.set()
        answer.wait(60)
        return look_up_ends(consumer)

    feed._ends = ends_once_kafka_answers
    first = threading.Thread(target=feed.ensure_started, daemon=True)
    try:
        first.start()
        assert asked.wait(10), "the first start asked Kafka"
        told = []
        telling = threading.Thread(target=lambda: told.append(feed.read_up_to()), daemon=True)
        telling.start()
        telling.join(10)
        assert told == [{}] and first.is_alive(), "where the feed read was told while a start waited for Kafka"
        with pytest.raises(FeedUnavailable, match="waited"):
            feed.ensure_started()  # a second stream
        assert first.is_alive(), "refused while the first start still waited"
        answer.set()
        first.join(30)
        assert feed.read_up_to() == {0: 0}, "the first start, once Kafka answered, reads the partition"
        feed.ensure_started()  # and a stream now finds it reading
    finally:
        answer.set()
        feed.close()
