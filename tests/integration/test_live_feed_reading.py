"""What an API process's live feed does with the events it reads, with no stream open and with one."""

import logging
import queue
import threading
from datetime import datetime, timezone

import pytest
from confluent_kafka import Producer

from consumer_service.infrastructure.kafka_io import ensure_topics
from infra.process import wait_until
from producer_service.application.live import Hub
from producer_service.infrastructure.kafka_stored_events import StoredEventFeed
from shared_adapters.kafka_connection import KafkaConnection
from shared_domain.failures import SourcePosition
from shared_domain.stored_events import encode_stored_event, stored_event
from tests.support.orphans import ReportsOrphaned

UNREADABLE = "skipping an unreadable event"


def test_a_feed_decodes_nothing_while_no_stream_is_open_and_hands_on_what_comes_once_one_is(kafka, unique, caplog):
    connection = KafkaConnection(kafka.address)
    stored, messages = f"stored-{unique}", f"messages-{unique}"
    ensure_topics(connection, [stored, messages], partitions=1, timeout=10)
    producer = Producer({"bootstrap.servers": kafka.address})
    for _ in range(2):  # records of the message topic for the events to name
        producer.produce(messages, key=b"clientB", value=b"a message")
    producer.flush(10)
    hub = Hub(per_client=1, capacity=10)
    feed = StoredEventFeed(connection, stored, hub, messages, timeout_s=5)
    caplog.set_level(logging.WARNING, logger="producer_service.infrastructure.kafka_stored_events")
    try:
        feed.ensure_started()
        producer.produce(stored, key=b"clientB", value=b"not an event")
        producer.flush(10)
        wait_until(lambda: feed.read_up_to() == {0: 1}, timeout=30, interval=0.05, what="the first event read")
        assert UNREADABLE not in caplog.text, "read with no stream open, and decoded all the same"

        subscription = hub.subscribe("clientB")
        event = stored_event(f"m-{unique}", "clientA", "clientB", "hello", datetime(2026, 12, 7, tzinfo=timezone.utc),
                             SourcePosition(messages, 0, 1))
        producer.produce(stored, key=b"clientB", value=encode_stored_event(event.message, event.source))
        producer.produce(stored, key=b"clientB", value=b"not an event either")
        producer.flush(10)
        handed = subscription.next(timeout=30)
        assert handed.message == event.message and handed.source == event.source
        wait_until(lambda: UNREADABLE in caplog.text, timeout=30, interval=0.05,
                   what="with a stream open, every event read is decoded")
    finally:
        feed.close()


class OrphanedOnce(StoredEventFeed):
    """A feed whose first client reports itself orphaned once `orphan` is set."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.orphan, self.clients = threading.Event(), []

    def _new_consumer(self):
        self.clients.append(super()._new_consumer())
        first = len(self.clients) == 1
        return ReportsOrphaned(self.clients[-1], lambda: first and self.orphan.is_set())


def test_a_feed_whose_client_is_orphaned_reads_on_through_a_new_one_from_where_it_had_read(kafka, unique):
    connection = KafkaConnection(kafka.address)
    stored, messages = f"stored-{unique}", f"messages-{unique}"
    ensure_topics(connection, [stored, messages], partitions=1, timeout=10)
    producer = Producer({"bootstrap.servers": kafka.address})
    for _ in range(10):
        producer.produce(messages, key=b"clientB", value=b"a message")
    producer.flush(10)
    hub = Hub(per_client=1, capacity=100)
    feed = OrphanedOnce(connection, stored, hub, messages, timeout_s=5)

    def send(offsets):
        for offset in offsets:
            event = stored_event(f"m-{offset}", "clientA", "clientB", "hello", datetime(2026, 12, 8, tzinfo=timezone.utc),
                                 SourcePosition(messages, 0, offset))
            producer.produce(stored, key=b"clientB", value=encode_stored_event(event.message, event.source))
        producer.flush(10)

    try:
        feed.ensure_started()
        subscription = hub.subscribe("clientB")
        send(range(5))
        handed = [subscription.next(timeout=30).message.message_id for _ in range(5)]
        feed.orphan.set()
        send(range(5, 10))
        handed += [subscription.next(timeout=30).message.message_id for _ in range(5)]
        with pytest.raises(queue.Empty):
            subscription.next(timeout=1)
    finally:
        feed.close()
    assert len(feed.clients) == 2, "the orphaned client was replaced"
    assert handed == [f"m-{offset}" for offset in range(10)], "every event once, in order, across the replacement"
