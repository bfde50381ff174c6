"""Use cases for operators: replay or discard dead-lettered records, by id or by filter."""

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from shared_domain import failed_messages as f
from shared_domain.clock import utc_now
from shared_domain.documents import bytes_from_view
from shared_domain.envelope import TRACE_ID_HEADER, usable_trace_id
from shared_domain.failed_messages import Selection

from .records import OutgoingRecord

log = logging.getLogger(__name__)


class PublishFailed(Exception):
    """The message topic did not acknowledge a replayed record."""


class FailureRepository(Protocol):
    """The failed records, as operators change them."""

    def select(self, selection: Selection, records: bool = True) -> list[dict]:
        """The failures selected, oldest first; with `records`, each with its key, payload and headers."""

    def count_by_error_type(self, selection: Selection) -> dict[str, int]:
        """How many failures a selection by filter matches, by error type."""

    def change_status(self, failure_ids: list[str], expected: str, status: str, entry: dict) -> set[str]:
        """Set the status of those still `expected`, appending `entry` to their history; return the ids changed."""


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
           on_each: Progress = lambda _id, _done, _total: None, chunk: int = 100) -> Report:
    """Republish each selected record to the message topic and mark it replayed.

    Records are published `chunk` at a time (each waits for `pace`), and a chunk is marked only
    once the broker acknowledged all of it; so an interruption can only lead to a second
    publish, which idempotent storage absorbs. An already replayed record is skipped, and a
    suspect one (its source implausible, see project_failures) refused, unless forced.
    """
    report = Report(dry_run=dry_run)
    documents = _selected(selection, ops, report)
    refusals = {d["_id"]: f.replay_refusal(d["status"], d.get("replayCount", 0), ops.replay_cap, force, d.get("truncated"),
                                           d.get("suspect"))
                for d in documents}
    for batch in _chunks([d for d in documents if refusals[d["_id"]] is None], chunk):
        if not dry_run:
            for _ in batch:
                pace()
            ops.publisher.publish_all([replay_record(document) for document in batch])
        for replay_count in sorted({d.get("replayCount", 0) for d in batch}):
            same = [d for d in batch if d.get("replayCount", 0) == replay_count]
            _mark(same, ops, report, _entry(ops, f.STATUS_REPLAYED, replayCount=replay_count + 1, forced=force))
        _progress(batch, report, documents, on_each)
    _note_refusals(refusals, report, documents, on_each)
    return report


def discard(selection: Selection, ops: Operations, *, reason: str, dry_run=False, force=False,
            on_each: Progress = lambda _id, _done, _total: None, chunk: int = 100) -> Report:
    """Mark each selected record discarded, with the operator's reason, so it is never replayed."""
    report = Report(dry_run=dry_run)
    documents = _selected(selection, ops, report, records=False)
    refusals = {d["_id"]: f.discard_refusal(d["status"], force) for d in documents}
    for batch in _chunks([d for d in documents if refusals[d["_id"]] is None], chunk):
        _mark(batch, ops, report, _entry(ops, f.STATUS_DISCARDED, reason=reason))
        _progress(batch, report, documents, on_each)
    _note_refusals(refusals, report, documents, on_each)
    return report


def _mark(batch: list[dict], ops: Operations, report: Report, entry: dict) -> None:
    """Give a batch the entry's status, per status it had when selected (nothing in a dry run)."""
    if report.dry_run:
        report.done += [d["_id"] for d in batch]
        return
    for status in sorted({d["status"] for d in batch}):
        ids = [d["_id"] for d in batch if d["status"] == status]
        changed = ops.failures.change_status(ids, status, entry["status"], entry)
        report.done += [i for i in ids if i in changed]
        report.skipped.update({i: "changed by someone else meanwhile" for i in ids if i not in changed})
        for document in batch:
            if document["_id"] in changed:
                log.info(f"failure {entry['status']}", extra={
                    "failureId": document["_id"], "messageId": document.get("messageId"),
                    "traceId": trace_id_of(document), "by": ops.operator})


def trace_id_of(document: dict) -> str | None:
    """The failure's trace id: kept on it since projection, else (older failures) among its original headers."""
    if document.get("traceId"):
        return document["traceId"]
    for header in document.get("headers", []):
        if header["name"] == TRACE_ID_HEADER:
            return usable_trace_id(bytes_from_view(header["value"], header["encoding"]))
    return None


def _note_refusals(refusals: dict, report: Report, documents: list[dict], on_each: Progress) -> None:
    """Report the records left alone."""
    for failure_id, refusal in refusals.items():
        if refusal is not None:
            report.note(failure_id, refusal)
            on_each(failure_id, _handled(report), len(documents))


def _progress(batch: list[dict], report: Report, documents: list[dict], on_each: Progress) -> None:
    """Tell the caller about each record of a finished batch."""
    for document in batch:
        on_each(document["_id"], _handled(report), len(documents))


def _handled(report: Report) -> int:
    """How many records the report has an outcome for."""
    return len(report.done) + len(report.skipped) + len(report.refused)


def _chunks(items: list, size: int) -> list[list]:
    """Split items into lists of at most `size`."""
    return [items[start:start + size] for start in range(0, len(items), size)]


def replay_record(document: dict) -> OutgoingRecord:
    """The original record of a failure, marked with its replay count and the failure it replays."""
    headers = [(h["name"], bytes_from_view(h["value"], h["encoding"])) for h in document.get("headers", [])]
    return OutgoingRecord(
        key=bytes_from_view(document.get("key"), document.get("keyEncoding", "none")),
        value=bytes_from_view(document.get("payload"), document.get("payloadEncoding", "none")),
        headers=f.replay_headers(headers, document.get("replayCount", 0) + 1, document["_id"]),
    )


class ReplayPace:
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


def _selected(selection: Selection, ops: Operations, report: Report, records: bool = True) -> list[dict]:
    """The selected documents; ids that match nothing are reported missing."""
    documents = ops.failures.select(selection, records)
    found = {document["_id"] for document in documents}
    report.missing = [failure_id for failure_id in selection.ids if failure_id not in found]
    return documents


def _entry(ops: Operations, status: str, **details) -> dict:
    """A history entry: what happened, when, by whom, and an id for this operation."""
    return {"status": status, "at": ops.clock(), "by": ops.operator, "operation": uuid.uuid4().hex, **details}
