"""The failed message (a dead letter as operators see it): statuses, rules, shapes, views, indexes, filter grammar."""

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from .clock import to_iso
from .failures import SourcePosition
from .message import ALL_CLIENTS, client_id_problem, unsafe_text_problem

FAILED_MESSAGES_COLLECTION = "failed_messages"
# The raw record of each failure lives apart from its summary, so listings never load payloads.
FAILED_RECORDS_COLLECTION = "failed_message_records"
RECORD_FIELDS = ("key", "keyEncoding", "payload", "payloadEncoding", "headers", "deadLetter")

STATUS_FAILED = "failed"
STATUS_REPLAYED = "replayed"
STATUS_DISCARDED = "discarded"
STATUSES = (STATUS_FAILED, STATUS_REPLAYED, STATUS_DISCARDED)
DEFAULT_REPLAY_CAP = 3
MAX_REASON_LENGTH = 1000
ERROR_TYPE_PATTERN = re.compile(r"[A-Za-z0-9_.]{1,100}")

# A replayed record carries its original headers, none added by dead-lettering, and these marks.
DEAD_LETTER_HEADER_PREFIX = "dlq."
REPLAY_COUNT_HEADER = "replay-count"
REPLAY_OF_HEADER = "replay-of"

# Listings, pages and operations read failures in this order; every index below ends with it.
ORDER = (("failedAt", 1), ("_id", 1))
INDEXES = (ORDER, (("status", 1), *ORDER),
           *((((name, 1), *ORDER)) for name in ("to", "from", "errorType", "consumerClient")))


def failure_id(source: SourcePosition, consumer_client: str) -> str:
    """Identify one failure: each consumer deployment fails a record independently."""
    return f"{source.topic}:{source.partition}:{source.offset}:{consumer_client}"


def failure_source(failure: str) -> SourcePosition | None:
    """The source position a failure id names (see `failure_id`), or None when the text is not one."""
    parts = failure.split(":")
    if len(parts) != 4 or not all(part.isascii() and part.isdigit() and len(part) <= 19 for part in parts[1:3]):
        return None
    return SourcePosition(parts[0], int(parts[1]), int(parts[2]))


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


class Equality(NamedTuple):
    """A filter on one document field, and the rule its value obeys."""

    field: str
    problem: Callable[[str], str | None]


# The one filter grammar, by parameter name: the equality filters, then status, reason text and failure time.
EQUALITY_FILTERS = {
    "to": Equality("to", client_id_problem),
    "from": Equality("from", client_id_problem),
    "errorType": Equality("errorType", error_type_problem),
    "client": Equality("consumerClient", consumer_client_problem),
}
STATUS = "status"  # one of STATUSES, or ANY_STATUS
ANY_STATUS = "any"
REASON_CONTAINS = "reasonContains"  # text the reason contains, in any case
SINCE, UNTIL = "since", "until"  # failed at or after, and before


@dataclass(frozen=True)
class Selection:
    """Which failed messages: ids, or a filter (status None: any); in ORDER or reversed, past `after`, up to `limit`."""

    ids: tuple[str, ...] = ()
    equals: dict = field(default_factory=dict)
    status: str | None = STATUS_FAILED
    reason_contains: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int | None = None
    after: tuple[datetime, str] | None = None
    newest_first: bool = False


def selection(filters: Mapping, ids: tuple[str, ...] = (), limit: int | None = None,
              after: tuple[datetime, str] | None = None, newest_first: bool = False) -> Selection:
    """The selection a filter (values by parameter name, checked by their rules) makes.

    A parameter left out or empty selects on nothing; so does status `any`, or no status at all.
    """
    equals = {equality.field: filters.get(parameter) for parameter, equality in EQUALITY_FILTERS.items()}
    status = filters.get(STATUS) or ANY_STATUS
    return Selection(ids=tuple(ids), equals={name: value for name, value in equals.items() if value},
                     status=None if status == ANY_STATUS else status,
                     reason_contains=filters.get(REASON_CONTAINS) or None, since=filters.get(SINCE) or None,
                     until=filters.get(UNTIL) or None, limit=limit, after=after, newest_first=newest_first)


def split_failure(document: dict) -> tuple[dict, dict]:
    """Split a failure document into its summary and its raw record, both under the failure's id."""
    summary = {name: value for name, value in document.items() if name not in RECORD_FIELDS}
    record = {name: document[name] for name in ("_id", *RECORD_FIELDS) if name in document}
    return summary, record


def failure_summary_view(document: dict) -> dict:
    """What a listing shows of a failure: why, when, where from, what operators did; no key, payload or headers."""
    view = {
        "id": document["_id"],
        "status": document["status"],
        "reason": document["reason"],
        "errorType": document["errorType"],
        "attempts": document["attempts"],
        "failedAt": to_iso(document["failedAt"]),
        "consumerClient": document["consumerClient"],
        "source": document["source"],
        "replayCount": document.get("replayCount", 0),
        "history": [_history_view(entry) for entry in document.get("history", [])],
    }
    for name in ("messageId", "from", "to", "traceId", "previousFailureId", "truncated", "suspect"):
        if name in document:
            view[name] = document[name]
    return view


def failure_view(document: dict) -> dict:
    """Turn a whole failure (summary and record) into its API representation."""
    return {
        **failure_summary_view(document),
        "key": document.get("key"),
        "payload": document.get("payload"),
        "payloadEncoding": document.get("payloadEncoding"),
        "headers": document.get("headers", []),
        "deadLetter": document.get("deadLetter"),
    }


def _history_view(entry: dict) -> dict:
    """Represent one status change with its time as ISO 8601."""
    return {name: to_iso(value) if isinstance(value, datetime) else value for name, value in entry.items()}


def replay_headers(original: list[tuple[str, bytes | None]], replay_count: int, of_failure: str) -> list:
    """The original headers without dead-letter context or earlier replay marks, plus this replay's marks."""
    replay_marks = (REPLAY_COUNT_HEADER, REPLAY_OF_HEADER)
    kept = [(name, value) for name, value in original
            if not name.startswith(DEAD_LETTER_HEADER_PREFIX) and name not in replay_marks]
    return kept + [(REPLAY_COUNT_HEADER, str(replay_count).encode()), (REPLAY_OF_HEADER, of_failure.encode())]


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
