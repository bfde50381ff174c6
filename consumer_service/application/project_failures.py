"""Use case: keep the `failed_messages` collection in step with the dead-letter topic."""

import logging

from .dead_letter import failure_document, unprojectable_document
from .errors import StoreUnavailable
from .ports import FailedMessageStore
from .records import IncomingRecord

log = logging.getLogger(__name__)


def project_dead_letters(records: list[IncomingRecord], store: FailedMessageStore) -> int:
    """Insert a document for every dead-letter record not projected yet; return how many were read.

    A record the projection cannot read, or whose document the store refuses, is kept as an
    unprojectable document with its raw bytes, so no dead letter can stall the projection.
    Raises StoreUnavailable, in which case the caller must not commit and should retry later.
    """
    if not records:
        return 0
    by_id = {}
    for record in records:
        document = _document_of(record)
        by_id[document["_id"]] = (record, document)
    refused = store.save_all([document for _, document in by_id.values()])
    if refused:
        log.warning("projecting %d dead letter(s) as unprojectable; first: %.300s", len(refused), next(iter(refused.values())))
        fallbacks = [unprojectable_document(by_id[failure_id][0], reason) for failure_id, reason in refused.items()]
        still_refused = store.save_all(fallbacks)
        if still_refused:
            raise StoreUnavailable(f"failed_messages refused even raw documents: {still_refused}")
    for failure_id, (record, document) in by_id.items():
        log.info("failure recorded", extra={"failureId": failure_id, "messageId": document.get("messageId"),
                                            "traceId": record.trace_id, "errorType": document.get("errorType")})
    return len(records)


def _document_of(record: IncomingRecord) -> dict:
    """The record's failure document, or its unprojectable document when it cannot be read."""
    if record.defect:
        return unprojectable_document(record, record.defect)
    try:
        return failure_document(record)
    except Exception as error:  # the safety net: a dead letter's content never stops the projection
        log.warning("cannot project %s:%d:%d", record.topic, record.partition, record.offset, exc_info=True)
        return unprojectable_document(record, f"{type(error).__name__}: {error}")
