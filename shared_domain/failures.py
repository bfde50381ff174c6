"""Why a record failed, and the context headers a dead-lettered record carries."""

import re
from dataclasses import dataclass
from datetime import datetime

from .message import ALL_CLIENTS, client_id_problem, unsafe_text_problem

DLQ_HEADER_PREFIX = "dlq."
REASON_HEADER = "dlq.reason"
ERROR_TYPE_HEADER = "dlq.error-type"
ATTEMPTS_HEADER = "dlq.attempts"
FAILED_AT_HEADER = "dlq.failed-at"
ORIGINAL_TOPIC_HEADER = "dlq.original-topic"
ORIGINAL_PARTITION_HEADER = "dlq.original-partition"
ORIGINAL_OFFSET_HEADER = "dlq.original-offset"
CONSUMER_CLIENT_HEADER = "dlq.consumer-client"
TRUNCATED_HEADER = "dlq.truncated"
# The context headers this version reads; other `dlq.` headers (a newer version's) are kept with the record and ignored.
CONTEXT_HEADERS = frozenset({REASON_HEADER, ERROR_TYPE_HEADER, ATTEMPTS_HEADER, FAILED_AT_HEADER, ORIGINAL_TOPIC_HEADER,
                             ORIGINAL_PARTITION_HEADER, ORIGINAL_OFFSET_HEADER, CONSUMER_CLIENT_HEADER, TRUNCATED_HEADER})
REPLAY_COUNT_HEADER = "replay-count"
REPLAY_OF_HEADER = "replay-of"
DEFAULT_REPLAY_CAP = 3

STATUS_FAILED = "failed"
STATUS_REPLAYED = "replayed"
STATUS_DISCARDED = "discarded"
STATUSES = (STATUS_FAILED, STATUS_REPLAYED, STATUS_DISCARDED)
MAX_REASON_LENGTH = 1000
# Counts and positions in headers: at most 18 ASCII digits, so they always fit a 64-bit integer.
_HEADER_NUMBER = re.compile(r"[0-9]{1,18}")


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


def header_number(text: str | None, default: int) -> int:
    """A count or position from a header: ASCII digits that fit 64 bits, else `default`."""
    return int(text) if text is not None and _HEADER_NUMBER.fullmatch(text) else default


ERROR_TYPE_PATTERN = re.compile(r"[A-Za-z0-9_.]{1,100}")


def status_problem(value: str) -> str | None:
    """Explain why a status filter is not one of the statuses, or None."""
    return None if value in STATUSES else f"must be one of {', '.join(STATUSES)}"


def error_type_problem(value: str) -> str | None:
    """Explain why an error type filter cannot name one (letters, digits, '_', '.'), or None."""
    return None if ERROR_TYPE_PATTERN.fullmatch(value) else "must be 1-100 letters, digits, '_' or '.', e.g. SchemaViolation"


def consumer_client_problem(value: str) -> str | None:
    """Explain why a value cannot name a consumer deployment (a client id, or '*'), or None."""
    if value == ALL_CLIENTS:
        return None
    problem = client_id_problem(value)
    return problem and f"{problem}, or '*'"


def reason_problem(value: str) -> str | None:
    """Explain why an operator's reason is unusable, or None: not blank, bounded, plain text."""
    if not value.strip():
        return "must not be empty"
    if len(value) > MAX_REASON_LENGTH:
        return f"must be at most {MAX_REASON_LENGTH} characters"
    return unsafe_text_problem(value)


def is_context_header(name: str) -> bool:
    """Tell whether a header was added by dead-lettering rather than by the sender."""
    return name.startswith(DLQ_HEADER_PREFIX)


SKIPPED = "skipped"
REFUSED = "refused"


@dataclass(frozen=True)
class Refusal:
    """Why an operation leaves a failed record alone: skipped (already handled) or refused (loop guard)."""

    outcome: str
    reason: str


def replay_refusal(status: str, replay_count: int, cap: int, force: bool, truncated: str | None = None,
                   suspect: str | None = None) -> Refusal | None:
    """Why a failed record must not be replayed now, or None when it may be."""
    if truncated:
        return Refusal(REFUSED, f"the dead letter holds a truncated copy ({truncated}); replay the original from its source position")
    if force:
        return None
    if status != STATUS_FAILED:
        return Refusal(SKIPPED, f"already {status}")
    if suspect:
        return Refusal(REFUSED, f"the dead letter may be forged, its source is implausible ({suspect}); "
                                "force to replay anyway")
    if replay_count >= cap:
        return Refusal(REFUSED, f"replayed {replay_count} time(s) already, the cap is {cap}; force to replay anyway")
    return None


def discard_refusal(status: str, force: bool) -> Refusal | None:
    """Why a failed record must not be discarded now, or None when it may be."""
    if force or status == STATUS_FAILED:
        return None
    return Refusal(SKIPPED, f"already {status}")


def replay_headers(original: list[tuple[str, bytes | None]], replay_count: int, of_failure: str) -> list:
    """The original headers without dead-letter context or earlier replay marks, plus this replay's marks."""
    replay_marks = (REPLAY_COUNT_HEADER, REPLAY_OF_HEADER)
    kept = [(name, value) for name, value in original if not is_context_header(name) and name not in replay_marks]
    return kept + [(REPLAY_COUNT_HEADER, str(replay_count).encode()), (REPLAY_OF_HEADER, of_failure.encode())]
