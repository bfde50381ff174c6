"""Producer service settings, read from environment variables."""

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache

from shared_adapters.kafka_connection import KafkaConnection, read_kafka_connection
from shared_domain.config import (ConfigError, read_auto_bool, read_bool, read_float, read_int, read_log_format,
                                  read_log_level, read_secret, read_str)
from shared_domain.documents import DEFAULT_DATABASE
from shared_domain.identity import MIN_OPERATOR_TOKEN_CHARS
from shared_domain.message import DEFAULT_MAX_MESSAGE_LENGTH
from shared_domain.topics import MESSAGES_TOPIC, STORED_EVENTS_TOPIC

# gunicorn's processes and request threads per process (PRODUCER_WORKERS, PRODUCER_THREADS). A send
# frees its thread while Kafka acknowledges it, but still holds it, at a client's first send in a
# window, for a rate-limit lease from the store (see docs/performance.md).
DEFAULT_WORKERS = 2
DEFAULT_THREADS = 32


@dataclass(frozen=True)
class ProducerSettings:
    """Everything the producer service is configured with."""

    kafka: KafkaConnection = field(default_factory=lambda: KafkaConnection("127.0.0.1:9092"))
    mongodb_uri: str = "mongodb://127.0.0.1:27017/"
    mongodb_database: str = DEFAULT_DATABASE
    messages_topic: str = MESSAGES_TOPIC
    stored_events_topic: str = STORED_EVENTS_TOPIC
    delivery_timeout_ms: int = 5000
    # 1: a lone send is answered about 1 ms later than at 0 (4.6 ms against 3.5), and under load the
    # sends of that millisecond leave together: at 16 connections, 20% more sends a second, 45% less
    # of the broker's CPU per send and 10% less of ours (performance.md).
    linger_ms: int = 1
    # POST /send-messages: 5 ms lets a batch leave in one request (26.8k msg/s against 17.5k at 0).
    batch_linger_ms: int = 5
    mongodb_timeout_ms: int = 2000
    max_message_length: int = DEFAULT_MAX_MESSAGE_LENGTH
    max_body_bytes: int = 65536
    max_batch_size: int = 100
    page_size_default: int = 50
    page_size_max: int = 500
    retry_after_s: int = 5
    readiness_timeout_s: float = 1.0
    operator_token: str | None = None
    # Identities: off only for trusted networks (the service warns at start).
    auth_enabled: bool = True
    open_recipients: bool = False
    send_rate_limit: int = 600  # sends per client per minute
    auth_failure_limit: int = 30  # failed authentications per address per minute
    session_ttl_s: int = 12 * 3600  # how long a page's sign-in lasts
    session_cookie_secure: bool | None = None  # None: Secure and __Host- when the request came over HTTPS
    # GET /stream: open streams per client in each process, a heartbeat comment every so many
    # seconds, events a slow reader may fall behind before it is cut off, messages a resume replays.
    stream_limit: int = 5
    stream_heartbeat_s: float = 15.0
    stream_queue: int = 1000
    stream_backfill_limit: int = 1000
    # Signs cursors; every worker of a deployment must share it.
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(32))


def load_settings(env: Mapping[str, str] | None = None) -> ProducerSettings:
    """Read the settings; raise ConfigError naming the first bad variable."""
    env = os.environ if env is None else env
    defaults = ProducerSettings()
    return ProducerSettings(
        kafka=read_kafka_connection(env),
        mongodb_uri=read_str(env, "MONGODB_URI", defaults.mongodb_uri),
        mongodb_database=read_str(env, "MONGODB_DATABASE", defaults.mongodb_database),
        messages_topic=read_str(env, "MESSAGES_TOPIC", defaults.messages_topic),
        stored_events_topic=read_str(env, "STORED_EVENTS_TOPIC", defaults.stored_events_topic),
        delivery_timeout_ms=read_int(env, "KAFKA_DELIVERY_TIMEOUT_MS", defaults.delivery_timeout_ms, minimum=1000),
        linger_ms=read_int(env, "KAFKA_LINGER_MS", defaults.linger_ms, minimum=0),
        batch_linger_ms=read_int(env, "KAFKA_BATCH_LINGER_MS", defaults.batch_linger_ms, minimum=0),
        mongodb_timeout_ms=read_int(env, "MONGODB_TIMEOUT_MS", defaults.mongodb_timeout_ms, minimum=100),
        max_message_length=read_int(env, "MAX_MESSAGE_LENGTH", defaults.max_message_length, minimum=1),
        max_body_bytes=read_int(env, "MAX_BODY_BYTES", defaults.max_body_bytes, minimum=1024),
        max_batch_size=read_int(env, "MAX_BATCH_SIZE", defaults.max_batch_size, minimum=1),
        page_size_default=read_int(env, "PAGE_SIZE_DEFAULT", defaults.page_size_default, minimum=1),
        page_size_max=read_int(env, "PAGE_SIZE_MAX", defaults.page_size_max, minimum=1),
        retry_after_s=read_int(env, "RETRY_AFTER_S", defaults.retry_after_s, minimum=1),
        readiness_timeout_s=read_float(env, "READINESS_TIMEOUT_S", defaults.readiness_timeout_s, minimum=0.1),
        operator_token=read_secret(env, "OPERATOR_TOKEN", MIN_OPERATOR_TOKEN_CHARS),
        auth_enabled=read_bool(env, "AUTH_ENABLED", defaults.auth_enabled),
        open_recipients=read_bool(env, "OPEN_RECIPIENTS", defaults.open_recipients),
        send_rate_limit=read_int(env, "SEND_RATE_LIMIT", defaults.send_rate_limit, minimum=1),
        auth_failure_limit=read_int(env, "AUTH_FAILURE_LIMIT", defaults.auth_failure_limit, minimum=1),
        session_ttl_s=read_int(env, "SESSION_TTL_S", defaults.session_ttl_s, minimum=60),
        session_cookie_secure=read_auto_bool(env, "SESSION_COOKIE_SECURE"),
        stream_limit=read_int(env, "STREAM_LIMIT_PER_CLIENT", defaults.stream_limit, minimum=1),
        stream_heartbeat_s=read_float(env, "STREAM_HEARTBEAT_S", defaults.stream_heartbeat_s, minimum=0.1),
        stream_queue=read_int(env, "STREAM_QUEUE", defaults.stream_queue, minimum=1),
        stream_backfill_limit=read_int(env, "STREAM_BACKFILL_LIMIT", defaults.stream_backfill_limit, minimum=1),
        secret_key=_secret_key(env, defaults.secret_key),
    )


def _secret_key(env: Mapping[str, str], default: str) -> str:
    """SECRET_KEY: at least 16 characters; a random one for this process when unset."""
    value = env.get("SECRET_KEY", "").strip()
    if value and len(value) < 16:
        raise ConfigError("SECRET_KEY", "must be at least 16 characters")
    return value or default


@dataclass(frozen=True)
class ServerSettings:
    """How gunicorn serves the producer: its address, processes and threads, request reading and logs."""

    bind: str = "127.0.0.1:8000"
    workers: int = DEFAULT_WORKERS
    threads: int = DEFAULT_THREADS
    stream_threads: int = 1000  # threads for open streams, apart from the request threads
    request_read_timeout_s: float = 10.0
    log_level: str = "INFO"
    log_format: str = "json"
    kafka_client_log_level: str = "CRITICAL"
    access_log: bool = False
    # Where every worker writes its metrics for /metrics to add up; None: a new directory for this server.
    metrics_dir: str | None = None


def load_server_settings(env: Mapping[str, str] | None = None) -> ServerSettings:
    """Read gunicorn's settings; raise ConfigError naming the first bad variable."""
    env = os.environ if env is None else env
    defaults = ServerSettings()
    return ServerSettings(
        bind=read_str(env, "PRODUCER_BIND", defaults.bind),
        workers=read_int(env, "PRODUCER_WORKERS", defaults.workers, minimum=1),
        threads=read_int(env, "PRODUCER_THREADS", defaults.threads, minimum=1),
        stream_threads=read_int(env, "STREAM_THREADS", defaults.stream_threads, minimum=1),
        request_read_timeout_s=read_float(env, "REQUEST_READ_TIMEOUT_S", defaults.request_read_timeout_s, minimum=0.1),
        log_level=read_log_level(env, "LOG_LEVEL", defaults.log_level),
        log_format=read_log_format(env),
        kafka_client_log_level=read_log_level(env, "KAFKA_CLIENT_LOG_LEVEL", defaults.kafka_client_log_level),
        access_log=read_bool(env, "PRODUCER_ACCESS_LOG", defaults.access_log),
        metrics_dir=env.get("PROMETHEUS_MULTIPROC_DIR") or None,
    )


@cache
def settings_at_start() -> tuple[ProducerSettings, ServerSettings]:
    """The service's and gunicorn's settings, read from the environment once per server.

    gunicorn's master reads them before it forks its workers, so every worker serves with the same
    settings, the same cursor key among them when SECRET_KEY is unset. Raises ConfigError.
    """
    return load_settings(), load_server_settings()


def load_command_log_settings(env: Mapping[str, str] | None = None) -> tuple[str, str]:
    """The command line's log level (LOG_LEVEL, WARNING by default) and format (LOG_FORMAT); ConfigError."""
    env = os.environ if env is None else env
    return read_log_level(env, "LOG_LEVEL", "WARNING"), read_log_format(env)
