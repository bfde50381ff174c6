"""Composition root of the producer service: wires the real Kafka and MongoDB adapters.

Dead-letter operations (and the store connection they share) live with the consumer service,
which owns the dead-letter topic; the producer only serves them over HTTP.
"""

from consumer_service.application.dlq_operations import Operations
from consumer_service.infrastructure.kafka_io import KafkaRecordPublisher, new_reliable_producer
from consumer_service.infrastructure.mongo_failures import MongoFailureRepository
from consumer_service.infrastructure.mongo_store import connect, connect_for_operators, is_reachable
from shared_domain.documents import FAILED_MESSAGES_COLLECTION, MESSAGES_COLLECTION, failure_summary_view, message_view

from ..config import ProducerSettings
from ..infrastructure.kafka_publisher import KafkaPublisher, new_producer
from ..infrastructure.mongo_identities import MongoIdentityRegistry
from ..infrastructure.mongo_rate_limits import MongoRateLimiter
from ..application.live import Hub
from ..infrastructure.kafka_stored_events import StoredEventFeed
from ..infrastructure.mongo_readers import MongoHistory, MongoReader
from .services import Live, Services


def real_services(settings: ProducerSettings) -> Services:
    """One producer and one MongoDB client for this process; the identities loaded while the store answers."""
    producer = new_producer(settings.kafka_bootstrap_servers, settings.delivery_timeout_ms, settings.linger_ms)
    batch_producer = new_producer(settings.kafka_bootstrap_servers, settings.delivery_timeout_ms, settings.batch_linger_ms)
    publisher = KafkaPublisher(producer, settings.messages_topic, settings.delivery_timeout_ms, batch_producer)
    mongo = connect(settings.mongodb_uri, settings.mongodb_timeout_ms)
    database = mongo[settings.mongodb_database]

    replays = new_reliable_producer(settings.kafka_bootstrap_servers, "producer-service-replay", settings.delivery_timeout_ms)
    operator_mongo = connect_for_operators(settings.mongodb_uri, settings.mongodb_timeout_ms)
    operations = Operations(
        failures=MongoFailureRepository(operator_mongo[settings.mongodb_database]),
        publisher=KafkaRecordPublisher(replays, settings.messages_topic, timeout=settings.delivery_timeout_ms / 1000 + 2),
        operator="operator-api",
        replay_cap=settings.replay_cap,
    )

    identities = MongoIdentityRegistry(database)
    identities.warm()

    hub = Hub(settings.stream_limit, settings.stream_queue)
    feed = StoredEventFeed(settings.kafka_bootstrap_servers, settings.stored_events_topic, hub)

    def close() -> None:
        hub.close()
        feed.close()
        publisher.close()
        replays.flush(10)
        mongo.close()
        operator_mongo.close()

    return Services(
        settings=settings,
        publisher=publisher,
        messages=MongoReader(database[MESSAGES_COLLECTION], "sentAt", message_view),
        failures=MongoReader(database[FAILED_MESSAGES_COLLECTION], "failedAt", failure_summary_view),
        checks={
            "kafka": lambda: publisher.is_reachable(settings.readiness_timeout_s),
            "mongodb": lambda: is_reachable(mongo),
        },
        identities=identities,
        limiter=MongoRateLimiter(database),
        operations=operations,
        live=Live(hub, MongoHistory(database[MESSAGES_COLLECTION]), feed.ensure_started),
        close=close,
    )
