"""Use cases for operators: replay or discard dead-lettered records, by id or by filter."""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from shared_domain import failures as f
from shared_domain.clock import utc_now
from shared_domain.documents import bytes_from_view

from .records import OutgoingRecord


class PublishFailed(Exception):
    """The message topic did not acknowledge a replayed record."""


@dataclass(frozen=True)
class Selection:
    """Which failed records an operation applies to: ids, or a filter (status None: any); at most `limit`."""

    ids: tuple[str, ...] = ()
    equals: dict = field(default_factory=dict)
    status: str | None = f.STATUS_FAILED
    reason_contains: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int | None = None


class FailureRepository(Protocol):
    """The `failed_messages` documents, as operators change them."""

    def select(self, selection: Selection) -> list[dict]:
        """The documents selected, oldest failure first."""

    def change_status(self, failure_id: str, expected: str, status: str, entry: dict) -> bool:
        """Set the status if it still is `expected` and append `entry` to the history; tell whether it did."""


class RecordPublisher(Protocol):
    """Publishes records to the message topic and waits for the acknowledgement."""

    def publish_all(self, records: list[OutgoingRecord]) -> None:
        """Publish every record or raise PublishFailed."""


@dataclass
class Operations:
    """What the operator use cases work with."""

    failures: FailureRepository
    publisher: RecordPublisher
    operator: str
    replay_cap: int = f.DEFAULT_REPLAY_CAP
    clock: Callable[[], datetime] = utc_now


@dataclass
class Report:
    """What an operation did (or, in a dry run, would do) to each selected record."""

    dry_run: bool
    done: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)

    def note(self, failure_id: str, refusal: f.Refusal) -> None:
        """Record why a record was left alone."""
        (self.refused if refusal.outcome == f.REFUSED else self.skipped)[failure_id] = refusal.reason


Progress = Callable[[str, int, int], None]


def replay(selection: Selection, ops: Operations, *, dry_run=False, force=False, pace: Callable[[], None] = lambda: None,
           on_each: Progress = lambda _id, _done, _total: None) -> Report:
    """Republish each selected record to the message topic and mark it replayed.

    Publishing comes before marking, so an interruption can only lead to a second publish,
    which idempotent storage absorbs; an already replayed record is skipped unless forced.
    """
    report = Report(dry_run=dry_run)
    documents = _selected(selection, ops, report)
    for position, document in enumerate(documents, 1):
        refusal = f.replay_refusal(document["status"], document.get("replayCount", 0), ops.replay_cap, force)
        if refusal:
            report.note(document["_id"], refusal)
        elif not dry_run:
            pace()
            ops.publisher.publish_all([replay_record(document)])
            entry = _entry(ops, f.STATUS_REPLAYED, replayCount=document.get("replayCount", 0) + 1, forced=force)
            if ops.failures.change_status(document["_id"], document["status"], f.STATUS_REPLAYED, entry):
                report.done.append(document["_id"])
            else:
                report.skipped[document["_id"]] = "changed by someone else meanwhile"
        else:
            report.done.append(document["_id"])
        on_each(document["_id"], position, len(documents))
    return report


def discard(selection: Selection, ops: Operations, *, reason: str, dry_run=False, force=False,
            on_each: Progress = lambda _id, _done, _total: None) -> Report:
    """Mark each selected record discarded, with the operator's reason, so it is never replayed."""
    report = Report(dry_run=dry_run)
    documents = _selected(selection, ops, report)
    for position, document in enumerate(documents, 1):
        refusal = f.discard_refusal(document["status"], force)
        if refusal:
            report.note(document["_id"], refusal)
        elif dry_run or ops.failures.change_status(document["_id"], document["status"], f.STATUS_DISCARDED,
                                                   _entry(ops, f.STATUS_DISCARDED, reason=reason)):
            report.done.append(document["_id"])
        else:
            report.skipped[document["_id"]] = "changed by someone else meanwhile"
        on_each(document["_id"], position, len(documents))
    return report


def replay_record(document: dict) -> OutgoingRecord:
    """The original record of a failure, marked with its replay count and the failure it replays."""
    headers = [(h["name"], bytes_from_view(h["value"], h["encoding"])) for h in document.get("headers", [])]
    return OutgoingRecord(
        key=bytes_from_view(document.get("key"), document.get("keyEncoding", "none")),
        value=bytes_from_view(document.get("payload"), document.get("payloadEncoding", "none")),
        headers=f.replay_headers(headers, document.get("replayCount", 0) + 1, document["_id"]),
    )


class RateLimiter:
    """Spaces calls evenly so that at most `per_second` happen each second."""

    def __init__(self, per_second: float, clock=time.monotonic, sleep=time.sleep):
        self._interval = 1.0 / per_second
        self._clock, self._sleep = clock, sleep
        self._next = None

    def __call__(self) -> None:
        """Wait until the next call is allowed."""
        now = self._clock()
        if self._next is not None and now < self._next:
            self._sleep(self._next - now)
            now = self._next
        self._next = now + self._interval


def _selected(selection: Selection, ops: Operations, report: Report) -> list[dict]:
    """The selected documents; ids that match nothing are reported missing."""
    documents = ops.failures.select(selection)
    found = {document["_id"] for document in documents}
    report.missing = [failure_id for failure_id in selection.ids if failure_id not in found]
    return documents


def _entry(ops: Operations, status: str, **details) -> dict:
    """A history entry: what happened, when and by whom."""
    return {"status": status, "at": ops.clock(), "by": ops.operator, **details}
