"""confluent-kafka publisher: one producer per process, delivery reports served in the background."""

import logging
import threading
import time
import uuid
from concurrent.futures import Future, TimeoutError as FutureTimeout

from confluent_kafka import KafkaException, Producer

from shared_domain.envelope import CONTENT_TYPE, CONTENT_TYPE_HEADER, TRACE_ID_HEADER, encode
from shared_domain.message import Message

from ..application.ports import BrokerUnavailable, Receipt


def new_producer(bootstrap_servers: str, delivery_timeout_ms: int) -> Producer:
    """An idempotent producer whose acknowledgement means every in-sync replica has the record."""
    return Producer({
        "bootstrap.servers": bootstrap_servers,
        "client.id": "producer-service",
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 5,
        "message.timeout.ms": delivery_timeout_ms,
        "socket.connection.setup.timeout.ms": min(delivery_timeout_ms, 10000),
        "logger": logging.getLogger("librdkafka"),
        "log.connection.close": False,
    })


class KafkaPublisher:
    """Publishes messages keyed by recipient and waits for each acknowledgement."""

    def __init__(self, producer: Producer, topic: str, delivery_timeout_ms: int):
        self._producer = producer
        self._topic = topic
        # librdkafka reports every record within message.timeout.ms; the margin covers scheduling.
        self._wait = delivery_timeout_ms / 1000 + 2.0
        self._closed = threading.Event()
        self._poller = threading.Thread(target=self._serve_delivery_reports, name="kafka-delivery", daemon=True)
        self._poller.start()

    def publish(self, message: Message, trace_id: str | None = None) -> Receipt:
        """Publish the message; raise BrokerUnavailable unless the broker acknowledged it in time."""
        [outcome] = self.publish_many([message], trace_id)
        if isinstance(outcome, BrokerUnavailable):
            raise outcome
        return outcome

    def publish_many(self, messages: list[Message], trace_id: str | None = None) -> list[Receipt | BrokerUnavailable]:
        """Publish messages together; return, in order, each one's receipt or why it was not acknowledged."""
        headers = [(CONTENT_TYPE_HEADER, CONTENT_TYPE.encode()), (TRACE_ID_HEADER, (trace_id or str(uuid.uuid4())).encode())]
        pending = [self._produce(message, headers) for message in messages]
        deadline = time.monotonic() + self._wait
        return [_outcome(future, deadline) for future in pending]

    def _produce(self, message: Message, headers: list) -> Future:
        """Hand one record to the producer; the future settles with its delivery report."""
        acknowledged: Future = Future()
        try:
            self._producer.produce(
                self._topic, key=message.recipient.encode(), value=encode(message), headers=headers,
                on_delivery=lambda error, record: _settle(acknowledged, error, record),
            )
        except BufferError:
            acknowledged.set_exception(BrokerUnavailable("the local send queue is full"))
        except KafkaException as error:
            acknowledged.set_exception(BrokerUnavailable(str(error)))
        return acknowledged

    def is_reachable(self, timeout: float) -> bool:
        """Tell whether a broker answers a metadata request."""
        try:
            metadata = self._producer.list_topics(timeout=timeout)
        except KafkaException:
            return False
        return bool(metadata.brokers) and self._topic in metadata.topics

    def close(self, timeout: float = 10.0) -> int:
        """Stop the background poll and flush what is in flight; return how many records were left."""
        self._closed.set()
        self._poller.join(timeout)
        return self._producer.flush(timeout)

    def _serve_delivery_reports(self) -> None:
        """Serve delivery callbacks until closed."""
        while not self._closed.is_set():
            self._producer.poll(0.1)


def _outcome(future: Future, deadline: float) -> Receipt | BrokerUnavailable:
    """The receipt of a delivered record, or why it was not acknowledged by the deadline."""
    try:
        return future.result(timeout=max(0.0, deadline - time.monotonic()))
    except FutureTimeout:
        return BrokerUnavailable("no acknowledgement from the broker in time")
    except BrokerUnavailable as error:
        return error


def _settle(acknowledged: Future, error, record) -> None:
    """Resolve a publish future from a delivery report."""
    if error is not None:
        acknowledged.set_exception(BrokerUnavailable(str(error)))
    else:
        acknowledged.set_result(Receipt(partition=record.partition(), offset=record.offset()))
