"""confluent-kafka publisher: one producer per process, delivery reports served in the background."""

import threading
from concurrent.futures import Future

from confluent_kafka import KafkaException, Producer

from shared_adapters.kafka_connection import KafkaConnection
from shared_adapters.kafka_delivery import Delivery, Record, produce_later
from shared_adapters.kafka_orphans import Renewing, WatchedProducer, drain
from shared_adapters.kafka_partition_ends import partition_count
from shared_domain.envelope import CONTENT_TYPE, CONTENT_TYPE_HEADER, TRACE_ID_HEADER, encode, new_trace_id
from shared_domain.message import Message
from shared_domain.partitioning import PARTITIONER

from ..application.ports import BrokerUnavailable, Receipt


def new_producer(kafka: KafkaConnection, delivery_timeout_ms: int, linger_ms: int = 0) -> WatchedProducer:
    """An idempotent producer whose acknowledgement means every in-sync replica has the record."""
    return WatchedProducer(kafka.config(**{
        "client.id": "producer-service",
        "acks": "all",
        "enable.idempotence": True,
        "partitioner": PARTITIONER,  # a recipient's messages go to the partition its consumer reads
        "linger.ms": linger_ms,
        "message.timeout.ms": delivery_timeout_ms,
        "socket.connection.setup.timeout.ms": min(delivery_timeout_ms, 10000),
    }))


def renewing_producer(kafka: KafkaConnection, delivery_timeout_ms: int, linger_ms: int = 0) -> Renewing:
    """A new_producer, replaced by another once librdkafka leaves it no broker to reach; what it held is reported
    failed within its delivery timeout."""
    return Renewing(lambda: new_producer(kafka, delivery_timeout_ms, linger_ms), "producer-service",
                    retire=lambda producer, name: drain(producer, name, delivery_timeout_ms / 1000 + 1))


class KafkaPublisher:
    """Publishes messages keyed by recipient; the futures of their acknowledgements are done by a poll thread.

    A lone message goes through `producer` (a linger of a millisecond or none: acknowledged in a few);
    several at once through `batch_producer` when given, whose linger lets them leave in one
    request instead of dribbling out one by one as they are handed over.
    """

    def __init__(self, producer: Producer, topic: str, batch_producer: Producer | None = None):
        self._producer = producer
        self._batch_producer = batch_producer or producer
        self._topic = topic
        self._closed = threading.Event()
        self._pollers = [threading.Thread(target=self._serve_delivery_reports, args=(each,), name="kafka-delivery",
                                          daemon=True) for each in {id(p): p for p in (producer, self._batch_producer)}.values()]
        for poller in self._pollers:
            poller.start()

    def publish(self, messages: list[Message], trace_id: str | None = None) -> Future[list[Receipt | BrokerUnavailable]]:
        """Publish messages together; the future of each one's receipt or why it was not acknowledged, in order.

        librdkafka reports each record within the producer's message.timeout.ms, so the future is done by then.
        """
        headers = [(CONTENT_TYPE_HEADER, CONTENT_TYPE.encode()), (TRACE_ID_HEADER, (trace_id or new_trace_id()).encode())]
        records = [Record(message.recipient.encode(), encode(message), headers) for message in messages]
        producer = self._producer if len(messages) == 1 else self._batch_producer
        if isinstance(producer, Renewing):  # asked once a request, not once a record
            producer = producer.current()
        return produce_later(producer, self._topic, records, _outcome)

    def is_reachable(self, timeout: float) -> bool:
        """Tell whether a broker answers a metadata request."""
        try:
            metadata = self._producer.list_topics(timeout=timeout)
        except KafkaException:
            return False
        return bool(metadata.brokers) and self._topic in metadata.topics

    def partition_count(self, topic: str, timeout: float) -> int | None:
        """How many partitions `topic` has; None when no broker says in time."""
        return partition_count(self._producer, topic, timeout)

    def close(self, timeout: float = 10.0) -> int:
        """Stop the background poll and flush what is in flight; return how many records were left."""
        self._closed.set()
        for poller in self._pollers:
            poller.join(timeout)
        left = self._producer.flush(timeout)
        return left + (self._batch_producer.flush(timeout) if self._batch_producer is not self._producer else 0)

    def _serve_delivery_reports(self, producer: Producer) -> None:
        """Serve a producer's delivery callbacks until closed."""
        while not self._closed.is_set():
            producer.poll(0.1)


def _outcome(delivery: Delivery) -> Receipt | BrokerUnavailable:
    """A record's receipt, or why the broker did not acknowledge it."""
    if delivery.error is not None:
        return BrokerUnavailable(str(delivery.error))
    return Receipt(partition=delivery.record.partition(), offset=delivery.record.offset())
