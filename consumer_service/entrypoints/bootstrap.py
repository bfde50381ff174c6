"""Composition root of the consumer service: wires the real adapters into the use cases."""

import logging
import threading
from contextlib import contextmanager
from functools import partial

from confluent_kafka import KafkaError, KafkaException

from shared_adapters.kafka_orphans import Renewing
from shared_adapters.kafka_partition_ends import lookup_client, partition_ends
from shared_adapters.mongo_client import connect, is_reachable
from shared_adapters.mongo_failed_messages import MongoFailureRepository
from shared_domain.config import ConfigError
from shared_domain.message import ALL_CLIENTS
from shared_domain.plausibility import PATIENCE_S, SourceCheck

from ..application.dlq_operations import Operations
from ..application.handle_batch import BatchHandler, complete_batch, prepare_batch
from ..application.project_failures import project_dead_letters
from ..application.project_views import project_views
from ..application.retry import RetryPolicy
from ..config import ConsumerSettings
from ..infrastructure import kafka_io
from ..infrastructure.mongo_failure_projection import MongoFailedMessageStore
from ..infrastructure.mongo_store import MongoMessageStore, connect_for_operators
from ..infrastructure.mongo_views import MongoConversationViews
from .health import serve_health
from .dependencies import Backoff, Dependencies
from .loop import run_loop

log = logging.getLogger(__name__)


@contextmanager
def operations(settings: ConsumerSettings, operator: str, query_time_limit_ms: int = 0):
    """Operator use-case dependencies wired to the real store and broker, closed on exit; with `query_time_limit_ms`,
    the store stops a listing or a count after that long (what a request waits for, not a command line)."""
    mongo = connect_for_operators(settings.mongodb_uri, settings.mongodb_timeout_ms)
    producer = kafka_io.new_reliable_producer(settings.kafka, "dlq-operator", 10000)
    repository = MongoFailureRepository(mongo[settings.mongodb_database], time_limit_ms=query_time_limit_ms)
    try:
        yield Operations(
            failures=repository,
            publisher=kafka_io.KafkaRecordPublisher(producer, settings.messages_topic, timeout=15.0),
            operator=operator,
            replay_cap=settings.replay_cap,
        )
    finally:
        producer.flush(10)
        mongo.close()


# How long a consumer starting waits for its stored-events topic to be reachable before it reads (or goes on without).
STARTUP_REACH_S = 5.0
# What a broker answers to topic settings it can never satisfy (more replicas than brokers, say).
REFUSED_TOPIC_SETTINGS = {KafkaError.INVALID_REPLICATION_FACTOR, KafkaError.INVALID_CONFIG, KafkaError.POLICY_VIOLATION}


def create_topics(settings: ConsumerSettings, stop: threading.Event) -> bool:
    """Create the topics if absent, waiting for Kafka; False if stopped before Kafka answered.

    Raises ConfigError when the broker refuses the replication settings for good.
    """
    kafka, backoff = Dependencies.fresh().kafka, Backoff(stop)
    while not stop.is_set():
        try:
            topics = [settings.messages_topic, settings.dead_letter_topic, settings.stored_events_topic]
            configs = {settings.dead_letter_topic: kafka_io.dead_letter_topic_config()}
            replication = kafka_io.Replication(settings.topic_replication_factor, settings.topic_min_insync_replicas)
            kafka_io.ensure_topics(settings.kafka, topics, settings.topic_partitions, timeout=5.0, configs=configs,
                                   replication=replication)
        except KafkaException as error:
            if error.args[0].code() in REFUSED_TOPIC_SETTINGS:
                raise ConfigError("TOPIC_REPLICATION_FACTOR", f"(or TOPIC_MIN_INSYNC_REPLICAS) was refused by Kafka: "
                                                              f"{error.args[0].str()}") from None
            kafka.down(error)
            backoff.wait()
            continue
        kafka.up(held=True)
        return True
    return False


def run_consumer_service(settings: ConsumerSettings, stop: threading.Event) -> int:
    """Run the message consumer (and the dead-letter projector) until `stop` is set; return the exit code."""
    if not create_topics(settings, stop):
        return 0
    mongo = connect(settings.mongodb_uri, settings.mongodb_timeout_ms)
    database = mongo[settings.mongodb_database]
    checks = {
        "kafka": lambda: kafka_io.is_reachable(settings.kafka, timeout=1.0),
        "mongodb": lambda: is_reachable(mongo),
    }
    dependencies = Dependencies.fresh(kafka_probe=checks["kafka"], mongodb_probe=checks["mongodb"])
    health = serve_health(settings.health_host, settings.health_port, checks) if settings.health_port else None
    projector_failed = threading.Event()
    projectors = [threading.Thread(target=run, name=name, args=(settings, database, stop, dependencies, projector_failed))
                  for name, run, wanted in (("dlq-projector", _run_dead_letter_projector, settings.project_dead_letters),
                                            ("views-projector", _run_views_projector, settings.project_views))
                  if wanted]
    for projector in projectors:
        projector.start()
    try:
        _run_message_consumer(settings, database, stop, dependencies)
    except kafka_io.PartitionsChanged as problem:
        log.error("consumer[%s]: %s", settings.client, problem)
        return 2
    finally:
        stop.set()
        for projector in projectors:
            projector.join()
        if health is not None:
            health.shutdown()
        mongo.close()
    return 1 if projector_failed.is_set() else 0


def _run_message_consumer(settings: ConsumerSettings, database, stop: threading.Event, dependencies: Dependencies) -> None:
    """Consume client-messages for one client (from its partition alone) or all until stopped."""
    name = f"consumer[{settings.client}]"
    partition = None if settings.client == ALL_CLIENTS else kafka_io.served_partition(
        settings.kafka, settings.group_id, settings.messages_topic, settings.client)
    dlq_producer = kafka_io.new_reliable_producer(
        settings.kafka, f"{name}-dlq", int(settings.dead_letter_timeout * 1000),
        max_message_bytes=kafka_io.DEAD_LETTER_MAX_BYTES,
    )
    # Stored events are waited for before each commit and are what live delivery waits for: no linger.
    events_producer = kafka_io.new_reliable_producer(
        settings.kafka, f"{name}-events", int(settings.dead_letter_timeout * 1000), linger_ms=0)
    # Else the first batch stored waits for it (half a second on a local broker) before it is committed.
    events_producer.reach(settings.stored_events_topic, STARTUP_REACH_S)
    handler = BatchHandler(
        client=settings.client,
        store=MongoMessageStore(database),
        dead_letters=kafka_io.KafkaDeadLetterSink(dlq_producer, settings.dead_letter_topic, settings.dead_letter_timeout),
        retry=RetryPolicy(settings.retry_attempts, settings.retry_first_wait, settings.retry_max_wait),
        max_length=settings.max_message_length,
        store_health=dependencies.mongodb,
        stored_events=kafka_io.KafkaStoredEventSink(events_producer, settings.stored_events_topic,
                                                    settings.dead_letter_timeout),
    )
    connect = partial(kafka_io.new_consumer, settings.kafka, settings.group_id, name, dependencies.kafka.suspect,
                      dependencies.kafka.up)
    log.info("%s: consuming %s as group %s", name, settings.messages_topic, settings.group_id)
    try:
        run_loop(name, connect, settings.messages_topic, partial(complete_batch, handler=handler), stop,
                 settings.batch_size, dependencies, prepare=partial(prepare_batch, handler=handler),
                 partition=partition, partition_check_s=settings.partition_check_s)
    finally:
        dlq_producer.flush(settings.dead_letter_timeout)
        events_producer.flush(settings.dead_letter_timeout)


def _run_dead_letter_projector(settings: ConsumerSettings, database, stop: threading.Event,
                               dependencies: Dependencies, failed: threading.Event) -> None:
    """Project the dead-letter topic into failed_messages until stopped."""
    name = "dlq-projector"
    connect = partial(kafka_io.new_consumer, settings.kafka, settings.projector_group_id, name,
                      dependencies.kafka.suspect, dependencies.kafka.up)
    store = MongoFailedMessageStore(database)
    with _source_check(settings, name, settings.projector_group_id) as sources:
        _run_projection(name, connect, settings.dead_letter_topic, partial(project_dead_letters, store=store,
                                                                             judge=sources.judge),
                        settings, stop, dependencies, failed)


def _run_views_projector(settings: ConsumerSettings, database, stop: threading.Event,
                         dependencies: Dependencies, failed: threading.Event) -> None:
    """Keep the conversation views from the stored-events topic until stopped."""
    name = "views-projector"
    connect = partial(kafka_io.new_consumer, settings.kafka, settings.views_group_id, name, dependencies.kafka.suspect,
                      dependencies.kafka.up, gather_ms=kafka_io.VIEWS_GATHER_MS)
    partitions = kafka_io.topic_partitions(settings.kafka, settings.messages_topic) or settings.topic_partitions
    views = MongoConversationViews(database)
    with _source_check(settings, name, settings.views_group_id) as sources:
        handle = partial(project_views, views=views, judge=sources.judge, partitions=partitions)
        _run_projection(name, connect, settings.stored_events_topic, handle, settings, stop, dependencies, failed,
                        on_moved=views.forget)


@contextmanager
def _source_check(settings: ConsumerSettings, name: str, group_id: str):
    """A check of the message positions a projector's records claim, looking ends up through a client of its own.

    Not through the projector's consumer: that consumer's thread waits, in a rebalance callback, for
    the batch being judged.
    """
    client = Renewing(partial(lookup_client, settings.kafka, f"{name}-ends", group_id), f"{name}-ends")
    ends = partition_ends(client, settings.messages_topic, timeout_s=5.0)

    def look_up(partitions):
        try:
            return ends(partitions)
        finally:
            client.poll(0)  # serves what librdkafka queued for it (log lines, statistics), or they pile up

    try:
        yield SourceCheck(settings.messages_topic, look_up, patience_s=PATIENCE_S)
    finally:
        client.close()


def _run_projection(name: str, connect, topic: str, handle, settings: ConsumerSettings, stop: threading.Event,
                    dependencies: Dependencies, failed: threading.Event, on_moved=lambda: None) -> None:
    """Run one projector's loop; on an unexpected error, stop the service (its supervisor starts it again)."""
    try:
        run_loop(name, connect, topic, handle, stop, settings.batch_size, dependencies, on_moved=on_moved)
    except Exception:
        log.exception("%s stopped on an unexpected error; stopping the service", name)
        failed.set()
        stop.set()
