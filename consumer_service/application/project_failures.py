"""Use case: keep the `failed_messages` collection in step with the dead-letter topic."""

from .dead_letter import failure_document
from .ports import FailedMessageStore
from .records import IncomingRecord


def project_dead_letters(records: list[IncomingRecord], store: FailedMessageStore) -> int:
    """Insert a document for every dead-letter record not projected yet; return how many were read.

    Raises StoreUnavailable, in which case the caller must not commit and should retry later.
    """
    if records:
        store.save_all([failure_document(record) for record in records])
    return len(records)
