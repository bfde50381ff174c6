"""Consumer service settings, read from environment variables: the only module of the service that reads them."""

import os
from collections.abc import Mapping
from dataclasses import dataclass

from shared_adapters.kafka_connection import KafkaConnection, read_kafka_connection
from shared_domain.config import (ConfigError, exit_2_on_bad_setting, read_auto_bool, read_bool, read_float, read_int,
                                  read_log_format, read_log_level, read_secret, read_str)
from shared_domain.documents import DEFAULT_DATABASE
from shared_domain.failed_messages import DEFAULT_REPLAY_CAP
from shared_domain.identity import MIN_OPERATOR_TOKEN_CHARS
from shared_domain.message import ALL_CLIENTS, DEFAULT_MAX_MESSAGE_LENGTH, client_id_problem
from shared_domain.topics import DEAD_LETTER_TOPIC, MESSAGES_TOPIC, STORED_EVENTS_TOPIC

from .infrastructure.kafka_io import PARTITION_CHECK_INTERVAL_S


@dataclass(frozen=True)
class ConsumerSettings:
    """Everything a consumer deployment is configured with."""

    client: str
    kafka: KafkaConnection
    mongodb_uri: str
    mongodb_database: str
    group_id: str
    projector_group_id: str
    views_group_id: str
    messages_topic: str
    dead_letter_topic: str
    stored_events_topic: str
    topic_partitions: int
    topic_replication_factor: int | None
    topic_min_insync_replicas: int | None
    batch_size: int
    partition_check_s: float
    retry_attempts: int
    retry_first_wait: float
    retry_max_wait: float
    mongodb_timeout_ms: int
    dead_letter_timeout: float
    max_message_length: int
    project_dead_letters: bool
    project_views: bool
    replay_cap: int
    health_port: int
    health_host: str


def load_settings(client: str | None = None, env: Mapping[str, str] | None = None) -> ConsumerSettings:
    """Read the settings; raise ConfigError naming the first bad variable."""
    env = os.environ if env is None else env
    client = client or read_str(env, "CLIENT_ID", ALL_CLIENTS)
    if client != ALL_CLIENTS and client_id_problem(client):
        raise ConfigError("CLIENT_ID", f"{client_id_problem(client)}, or '*' for all clients")
    messages_topic = read_str(env, "MESSAGES_TOPIC", MESSAGES_TOPIC)
    dead_letter_topic = read_str(env, "DEAD_LETTER_TOPIC", DEAD_LETTER_TOPIC)
    stored_events_topic = read_str(env, "STORED_EVENTS_TOPIC", STORED_EVENTS_TOPIC)
    return ConsumerSettings(
        client=client,
        kafka=read_kafka_connection(env),
        mongodb_uri=read_str(env, "MONGODB_URI", "mongodb://127.0.0.1:27017/"),
        mongodb_database=read_str(env, "MONGODB_DATABASE", DEFAULT_DATABASE),
        group_id=read_str(env, "CONSUMER_GROUP_ID", default_group_id(messages_topic, client)),
        projector_group_id=f"{dead_letter_topic}.projector",
        views_group_id=f"{stored_events_topic}.views",
        messages_topic=messages_topic,
        dead_letter_topic=dead_letter_topic,
        stored_events_topic=stored_events_topic,
        topic_partitions=read_int(env, "TOPIC_PARTITIONS", 3, minimum=1),
        topic_replication_factor=read_int(env, "TOPIC_REPLICATION_FACTOR", 0, minimum=0) or None,
        topic_min_insync_replicas=read_int(env, "TOPIC_MIN_INSYNC_REPLICAS", 0, minimum=0) or None,
        batch_size=read_int(env, "CONSUMER_BATCH_SIZE", 500, minimum=1),
        partition_check_s=read_float(env, "PARTITION_CHECK_S", PARTITION_CHECK_INTERVAL_S, minimum=0.1),
        retry_attempts=read_int(env, "STORE_RETRY_ATTEMPTS", 3, minimum=1),
        retry_first_wait=read_float(env, "STORE_RETRY_FIRST_WAIT_S", 1.0),
        retry_max_wait=read_float(env, "STORE_RETRY_MAX_WAIT_S", 30.0),
        mongodb_timeout_ms=read_int(env, "MONGODB_TIMEOUT_MS", 2000, minimum=100),
        dead_letter_timeout=read_float(env, "DEAD_LETTER_TIMEOUT_S", 10.0, minimum=0.1),
        max_message_length=read_int(env, "MAX_MESSAGE_LENGTH", DEFAULT_MAX_MESSAGE_LENGTH, minimum=1),
        project_dead_letters=read_bool(env, "PROJECT_DEAD_LETTERS", True),
        project_views=read_bool(env, "PROJECT_VIEWS", True),
        replay_cap=read_int(env, "REPLAY_MAX_COUNT", DEFAULT_REPLAY_CAP, minimum=1),
        health_port=read_int(env, "CONSUMER_HEALTH_PORT", 0, minimum=0),
        health_host=read_str(env, "CONSUMER_HEALTH_HOST", "127.0.0.1"),
    )


def settings_or_exit(client: str | None = None) -> ConsumerSettings:
    """Load settings for a command, or exit 2 with one line naming the bad variable."""
    with exit_2_on_bad_setting():
        return load_settings(client)


def default_group_id(messages_topic: str, client: str) -> str:
    """One consumer group per deployment and topic: per client, or one for all clients."""
    return f"{messages_topic}.for-all" if client == ALL_CLIENTS else f"{messages_topic}.for.{client}"


@dataclass(frozen=True)
class OperatorSettings:
    """The operator server (`consumer-service operator`): where it listens and who may use it."""

    consumer: ConsumerSettings
    bind: str = "127.0.0.1:8081"
    threads: int = 8
    auth_enabled: bool = True
    operator_token: str | None = None
    auth_failure_limit: int = 30
    retry_after_s: int = 5
    session_ttl_s: int = 12 * 3600
    session_cookie_secure: bool | None = None  # None: Secure and __Host- when the request came over HTTPS
    max_body_bytes: int = 1024 * 1024
    log_format: str = "json"


def load_operator_settings(env: Mapping[str, str] | None = None) -> OperatorSettings:
    """Read the operator server's settings; raise ConfigError naming the first bad variable."""
    env = os.environ if env is None else env
    defaults = OperatorSettings(consumer=None)
    return OperatorSettings(
        consumer=load_settings(ALL_CLIENTS, env),
        bind=read_str(env, "OPERATOR_BIND", defaults.bind),
        threads=read_int(env, "OPERATOR_THREADS", defaults.threads, minimum=1),
        auth_enabled=read_bool(env, "AUTH_ENABLED", defaults.auth_enabled),
        operator_token=read_secret(env, "OPERATOR_TOKEN", MIN_OPERATOR_TOKEN_CHARS),
        auth_failure_limit=read_int(env, "AUTH_FAILURE_LIMIT", defaults.auth_failure_limit, minimum=1),
        retry_after_s=read_int(env, "RETRY_AFTER_S", defaults.retry_after_s, minimum=1),
        session_ttl_s=read_int(env, "SESSION_TTL_S", defaults.session_ttl_s, minimum=60),
        session_cookie_secure=read_auto_bool(env, "SESSION_COOKIE_SECURE"),
        log_format=read_log_format(env),
    )


@dataclass(frozen=True)
class LogSettings:
    """How every consumer-service command logs."""

    level: str = "INFO"
    format: str = "json"
    kafka_client_level: str = "CRITICAL"  # librdkafka's own lines


def load_log_settings(level: str | None = None, env: Mapping[str, str] | None = None) -> LogSettings:
    """Read the log settings, `level` (--log-level) before LOG_LEVEL; raise ConfigError naming a bad one."""
    env = os.environ if env is None else env
    defaults = LogSettings()
    return LogSettings(
        level=read_log_level({"LOG_LEVEL": level} if level else env, "LOG_LEVEL", defaults.level),
        format=read_log_format(env),
        kafka_client_level=read_log_level(env, "KAFKA_CLIENT_LOG_LEVEL", defaults.kafka_client_level),
    )
