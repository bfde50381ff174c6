"""Composition root of the producer service: wires the real Kafka and MongoDB adapters."""

from shared_adapters.mongo_client import QUERY_TIME_LIMIT_MS, connect, is_reachable
from shared_adapters.mongo_failed_messages import MongoFailureRepository
from shared_adapters.mongo_identities import MongoIdentityRegistry
from shared_adapters.mongo_rate_limits import MongoRateLimiter
from shared_adapters.mongo_sessions import MongoSessions
from shared_domain.conversation_views import VIEWS_COLLECTION
from shared_domain.documents import MESSAGES_COLLECTION, READ_MARKERS_COLLECTION, message_view

from ..application.failed_messages import FailurePages
from ..application.live import Hub
from ..config import ProducerSettings
from ..infrastructure.kafka_publisher import KafkaPublisher, renewing_producer
from ..infrastructure.kafka_stored_events import StoredEventFeed
from ..infrastructure.mongo_readers import (MongoConversations, MongoHistory, MongoReader, MongoViews, PartitionCount,
                                            PagedMessages)
from .services import Live, Services


def real_services(settings: ProducerSettings) -> Services:
    """One producer and one MongoDB client for this process; the identities loaded while the store answers."""
    producer = renewing_producer(settings.kafka, settings.delivery_timeout_ms, settings.linger_ms)
    batch_producer = renewing_producer(settings.kafka, settings.delivery_timeout_ms, settings.batch_linger_ms)
    publisher = KafkaPublisher(producer, settings.messages_topic, batch_producer)
    mongo = connect(settings.mongodb_uri, settings.mongodb_timeout_ms)
    database = mongo[settings.mongodb_database]

    identities = MongoIdentityRegistry(database)
    identities.warm()

    partitions = PartitionCount(lambda: publisher.partition_count(settings.stored_events_topic,
                                                                 settings.readiness_timeout_s))
    views = MongoViews(database[VIEWS_COLLECTION], partitions)
    hub = Hub(settings.stream_limit, settings.stream_queue)
    feed = StoredEventFeed(settings.kafka, settings.stored_events_topic, hub, settings.messages_topic)
    feed.start_soon()

    def close() -> None:
        hub.close()
        feed.close()
        publisher.close()
        mongo.close()

    return Services(
        settings=settings,
        publisher=publisher,
        messages=PagedMessages(MongoReader(database[MESSAGES_COLLECTION], "sentAt", message_view, QUERY_TIME_LIMIT_MS),
                               database[VIEWS_COLLECTION], partitions),
        failures=FailurePages(MongoFailureRepository(database, any_error_unavailable=True,
                                                                time_limit_ms=QUERY_TIME_LIMIT_MS)),
        checks={
            "kafka": lambda: publisher.is_reachable(settings.readiness_timeout_s),
            "mongodb": lambda: is_reachable(mongo),
        },
        identities=identities,
        limiter=MongoRateLimiter(database),
        sessions=MongoSessions(database),
        conversations=MongoConversations(views, database[READ_MARKERS_COLLECTION]),
        live=Live(hub, MongoHistory(database[MESSAGES_COLLECTION], views), feed.ensure_started, feed.read_up_to),
        close=close,
    )
