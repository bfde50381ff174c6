"""Use case: handle a batch of incoming records: store, skip or dead-letter each one."""

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from shared_domain.clock import utc_now
from shared_domain.envelope import PoisonRecord, SchemaViolation, UndecodableRecord, read_envelope
from shared_domain.failures import Failure
from shared_domain.message import DEFAULT_MAX_MESSAGE_LENGTH, Message, client_id_problem, is_addressed_to

from .ports import DeadLetterSink, DependencyObserver, MessageStore, StoredEventSink
from .records import DeadLetter, IncomingRecord
from .retry import RetriesExhausted, RetryPolicy

log = logging.getLogger(__name__)
STORE_UNAVAILABLE = "StoreUnavailable"
STORE_REJECTED = "StoreRejected"


@dataclass
class BatchHandler:
    """Everything a consumer for one client (or '*') needs to handle its records."""

    client: str
    store: MessageStore
    dead_letters: DeadLetterSink
    stored_events: StoredEventSink
    store_health: DependencyObserver
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    max_length: int = DEFAULT_MAX_MESSAGE_LENGTH
    clock: Callable[[], datetime] = utc_now


@dataclass
class BatchOutcome:
    """How many records of a batch were stored, skipped, dead-lettered (by error type) or resent, and store retries."""

    stored: int = 0
    skipped: int = 0
    dead_lettered: int = 0
    dead_letter_types: dict[str, int] = field(default_factory=dict)
    store_retries: int = 0
    resent: int = 0  # messages their sender sent again, stored before from another record
    unknown_fields: dict[str, int] = field(default_factory=dict)  # envelopes carrying each field this version ignores
    # Announces the batch's stored messages and waits until the broker has their events, or raises
    # StoredEventsUnavailable: the batch is committed only after it returned, which the loop calls while the next batch
    # is stored (None: nothing to announce).
    acknowledged: Callable[[], None] | None = field(default=None, repr=False, compare=False)


@dataclass
class PreparedBatch:
    """A batch once every record is decided: the messages to store, the dead letters so far, how many skipped."""

    to_store: list[tuple[IncomingRecord, Message]] = field(default_factory=list)
    letters: list[DeadLetter] = field(default_factory=list)
    skipped: int = 0
    unknown_fields: Counter = field(default_factory=Counter)  # envelopes carrying each field this version ignores


def prepare_batch(records: list[IncomingRecord], handler: BatchHandler) -> PreparedBatch:
    """Decode and decide every record, touching no store: the part that may overlap the previous batch's writes."""
    prepared = PreparedBatch()
    for record in records:
        try:
            decision = _decide(record, handler, prepared.unknown_fields)
        except Exception as error:  # the safety net: whatever one record causes, it is dead-lettered, the batch goes on
            log.warning("unexpected %s handling %s:%d:%d", type(error).__name__, record.topic, record.partition,
                        record.offset, exc_info=True)
            decision = _letter(handler, record, type(error).__name__, f"unexpected error: {error}", 1)
        if decision is None:
            prepared.skipped += 1
        elif isinstance(decision, DeadLetter):
            prepared.letters.append(decision)
        else:
            prepared.to_store.append((record, decision))
    return prepared


def complete_batch(prepared: PreparedBatch, handler: BatchHandler) -> BatchOutcome:
    """Store the batch's messages, announce them, and write its dead letters, those the store refused included.

    Stored events go out before dead letters: if the events fail, the batch is read again
    without a dead letter written twice; a message stored again is announced again. Without dead
    letters, the events are published and acknowledged when the loop calls the outcome's `acknowledged`.
    """
    stored, unstored, resent, attempts = _store(prepared.to_store, handler)
    acknowledged = None
    if stored:
        acknowledged = _Announcement(handler.stored_events, stored)
        _log_stored(stored)
    letters = prepared.letters + unstored
    if letters:
        if acknowledged is not None:
            acknowledged()
        handler.dead_letters.send_all(letters)
        message_ids = {id(record): message.message_id for record, message in prepared.to_store}
        for letter in letters:
            record = letter.record
            log.warning("message dead-lettered", extra={
                "messageId": message_ids.get(id(record)), "traceId": record.trace_id,
                "errorType": letter.failure.error_type, "topic": record.topic, "partition": record.partition,
                "offset": record.offset})
    return BatchOutcome(stored=len(stored), skipped=prepared.skipped, dead_lettered=len(letters),
                        dead_letter_types=dict(Counter(letter.failure.error_type for letter in letters)),
                        store_retries=max(0, attempts - 1), resent=resent, unknown_fields=dict(prepared.unknown_fields),
                        acknowledged=acknowledged)


class _Announcement:
    """The stored events of a batch, published when the loop says (`publish`, once the next batch is being stored: the
    store does not wait for their encoding and sending between two writes) or at the first call, which waits for the
    broker to have them."""

    def __init__(self, sink: StoredEventSink, stored: list[tuple[IncomingRecord, Message]]):
        self._sink, self._stored, self._acknowledged = sink, stored, None

    def publish(self) -> None:
        """Hand the events to the broker, once, without waiting for it."""
        if self._acknowledged is None:
            self._acknowledged = self._sink.publish_stored(self._stored)

    def __call__(self) -> None:
        self.publish()
        self._acknowledged()


# Messages named by one INFO line: about 8 KB of JSON at most, under what log shippers take as one line (Docker's
# json-file splits lines at 16 KB, so one line of a 500-message batch would reach a pipeline in pieces).
STORED_PER_LINE = 100


def _log_stored(stored: list[tuple[IncomingRecord, Message]]) -> None:
    """One INFO line a batch (one per STORED_PER_LINE messages of it), which a grep on any of its message or trace ids
    finds; each message's own line is DEBUG."""
    traced = [(record, message, record.trace_id) for record, message in stored]
    for start in range(0, len(traced), STORED_PER_LINE):
        part = traced[start:start + STORED_PER_LINE]
        log.info("messages stored", extra={"messageIds": [message.message_id for _, message, _ in part],
                                           "traceIds": [trace_id for _, _, trace_id in part],
                                           "positions": [f"{record.partition}:{record.offset}" for record, _, _ in part]})
    if log.isEnabledFor(logging.DEBUG):
        for record, message, trace_id in traced:
            log.debug("message stored", extra={"messageId": message.message_id, "traceId": trace_id,
                                               "partition": record.partition, "offset": record.offset})


def _decide(record: IncomingRecord, handler: BatchHandler, unknown_fields: Counter) -> Message | DeadLetter | None:
    """The message to store, the dead letter of a poison record, or None when it is for another client.

    The envelope's fields this version does not know are ignored, and counted in `unknown_fields`.
    """
    try:
        if record.defect:
            raise UndecodableRecord(record.defect)
        envelope = read_envelope(record.value, handler.max_length)
    except PoisonRecord as poison:
        recipient = _recipient_of_poison(record, poison)
        # A record nobody can be identified as the recipient of is kept by every consumer.
        if recipient is None or is_addressed_to(recipient, handler.client):
            return _letter(handler, record, type(poison).__name__, str(poison), 1)
        return None
    unknown_fields.update(envelope.unknown_fields)
    message = envelope.message
    return message if is_addressed_to(message.recipient, handler.client) else None


def _store(items: list[tuple[IncomingRecord, Message]],
           handler: BatchHandler) -> tuple[list[tuple[IncomingRecord, Message]], list[DeadLetter], int, int]:
    """Store messages with retries; return those this batch stored, dead letters for those refused, how many were
    resends of messages stored before (neither stored again nor announced), and the attempts."""
    if not items:
        return [], [], 0, 0
    batch = [(message, record.position) for record, message in items]
    replaying = {index: replayed for index, (record, _) in enumerate(items) if (replayed := record.replays) is not None}
    try:
        saved, attempts = handler.retry.run(lambda: handler.store.save_all(batch, replaying))
    except RetriesExhausted as exhausted:
        handler.store_health.down(exhausted.last_error)
        reason = f"store unavailable: {exhausted.last_error}"
        letters = [_letter(handler, record, STORE_UNAVAILABLE, reason, exhausted.attempts) for record, _ in items]
        return [], letters, 0, exhausted.attempts
    handler.store_health.up()
    stored = [item for index, item in enumerate(items) if index not in saved.refused and index not in saved.earlier]
    letters = [_letter(handler, items[index][0], STORE_REJECTED, reason, attempts)
               for index, reason in sorted(saved.refused.items())]
    return stored, letters, len(saved.earlier), attempts


def _letter(handler: BatchHandler, record: IncomingRecord, error_type: str, reason: str, attempts: int) -> DeadLetter:
    """Build a dead letter for a record."""
    failure = Failure(error_type=error_type, reason=reason, attempts=attempts, failed_at=handler.clock())
    return DeadLetter(record=record, failure=failure, consumer_client=handler.client)


def _recipient_of_poison(record: IncomingRecord, poison: PoisonRecord) -> str | None:
    """Best guess at whom a poison record was for: its envelope's `to`, else its key."""
    candidates = [poison.recipient_hint if isinstance(poison, SchemaViolation) else None]
    if record.key is not None:
        candidates.append(record.key.decode("utf-8", errors="replace"))
    for candidate in candidates:
        if candidate is not None and client_id_problem(candidate) is None:
            return candidate
    return None
