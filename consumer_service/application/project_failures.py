"""Use case: keep the `failed_messages` collection in step with the dead-letter topic."""

import logging
from collections.abc import Callable, Sequence

from shared_domain.failed_messages import MAX_REASON_LENGTH
from shared_domain.failures import SourcePosition
from shared_domain.plausibility import EndsUnknown

from .errors import KafkaUnavailable, StoreUnavailable
from .ports import FailedMessageStore
from .records import IncomingRecord

log = logging.getLogger(__name__)

# Why each claimed source position cannot be a record of the message topic, or None (SourceCheck.judge).
Judge = Callable[[Sequence[SourcePosition]], list[str | None]]


def project_dead_letters(records: list[IncomingRecord], store: FailedMessageStore, judge: Judge | None = None) -> int:
    """Insert a document for every dead-letter record not projected yet; return how many were read.

    A record the projection cannot read, or whose document the store refuses, is kept as an
    unprojectable document with its raw bytes, so no dead letter can stall the projection.
    With `judge`, a document whose source cannot be a record of the message topic is marked
    `suspect`, saying why (anyone who can write to the dead-letter topic can forge a letter).
    Raises StoreUnavailable, or KafkaUnavailable when the sources cannot be checked yet, in which
    case the caller must not commit and should retry later.
    """
    if not records:
        return 0
    by_id = {}
    for record in records:
        document = _document_of(record, store)
        by_id[document["_id"]] = (record, document)
    _mark_suspects([document for _, document in by_id.values()], judge)
    refused = store.save_all([document for _, document in by_id.values()])
    if refused:
        log.warning("projecting %d dead letter(s) as unprojectable; first: %.300s", len(refused), next(iter(refused.values())))
        fallbacks = [store.unprojectable_document(by_id[failure_id][0], reason) for failure_id, reason in refused.items()]
        _mark_suspects(fallbacks, judge)
        still_refused = store.save_all(fallbacks)
        if still_refused:
            raise StoreUnavailable(f"failed_messages refused even raw documents: {still_refused}")
    for failure_id, (record, document) in by_id.items():
        log.info("failure recorded", extra={"failureId": failure_id, "messageId": document.get("messageId"),
                                            "traceId": record.trace_id, "errorType": document.get("errorType")})
    return len(records)


def _document_of(record: IncomingRecord, store: FailedMessageStore) -> dict:
    """The record's failure document, or its unprojectable document when it cannot be read."""
    if record.defect:
        return store.unprojectable_document(record, record.defect)
    try:
        return store.document_of(record)
    except Exception as error:  # the safety net: a dead letter's content never stops the projection
        log.warning("cannot project %s:%d:%d", record.topic, record.partition, record.offset, exc_info=True)
        return store.unprojectable_document(record, f"{type(error).__name__}: {error}")


def _mark_suspects(documents: list[dict], judge: Judge | None) -> None:
    """Mark each document whose source cannot be a record of the message topic with why."""
    if judge is None or not documents:
        return
    try:
        problems = judge([SourcePosition(**document["source"]) for document in documents])
    except EndsUnknown as error:
        raise KafkaUnavailable(str(error)) from error
    except Exception as error:  # the safety net: an unchecked letter is marked, never left to stop the projection
        problems = [f"not checked ({type(error).__name__}: {error})"] * len(documents)
    suspects = [(document, problem) for document, problem in zip(documents, problems) if problem is not None]
    for document, problem in suspects:
        document["suspect"] = problem[:MAX_REASON_LENGTH]
    if suspects:
        first, why = suspects[0]
        log.warning("%d dead letter(s) marked suspect; first: %.300s: %.300s", len(suspects), first["_id"], why)
