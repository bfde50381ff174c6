"""Why a record failed, and the context headers a dead-lettered record carries."""

from dataclasses import dataclass
from datetime import datetime

DLQ_HEADER_PREFIX = "dlq."
REASON_HEADER = "dlq.reason"
ERROR_TYPE_HEADER = "dlq.error-type"
ATTEMPTS_HEADER = "dlq.attempts"
FAILED_AT_HEADER = "dlq.failed-at"
ORIGINAL_TOPIC_HEADER = "dlq.original-topic"
ORIGINAL_PARTITION_HEADER = "dlq.original-partition"
ORIGINAL_OFFSET_HEADER = "dlq.original-offset"
CONSUMER_CLIENT_HEADER = "dlq.consumer-client"
REPLAY_COUNT_HEADER = "replay-count"

STATUS_FAILED = "failed"
STATUS_REPLAYED = "replayed"
STATUS_DISCARDED = "discarded"
STATUSES = (STATUS_FAILED, STATUS_REPLAYED, STATUS_DISCARDED)


@dataclass(frozen=True)
class Failure:
    """Why one record could not be stored, and after how many attempts."""

    error_type: str
    reason: str
    attempts: int
    failed_at: datetime


@dataclass(frozen=True)
class SourcePosition:
    """Where a record sat in Kafka."""

    topic: str
    partition: int
    offset: int


def failure_id(source: SourcePosition, consumer_client: str) -> str:
    """Identify one failure: each consumer deployment fails a record independently."""
    return f"{source.topic}:{source.partition}:{source.offset}:{consumer_client}"


def is_context_header(name: str) -> bool:
    """Tell whether a header was added by dead-lettering rather than by the sender."""
    return name.startswith(DLQ_HEADER_PREFIX)
