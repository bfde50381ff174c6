"""The dead letter as a Kafka record: the original record, with context headers saying why, when and where from."""

from shared_domain.clock import to_iso
from shared_domain.documents import storable_text
from shared_domain.failed_messages import DEAD_LETTER_HEADER_PREFIX, MAX_REASON_LENGTH

from ..application.records import DeadLetter, Headers, OutgoingRecord

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


def is_context_header(name: str) -> bool:
    """Tell whether a header was added by dead-lettering rather than by the sender."""
    return name.startswith(DEAD_LETTER_HEADER_PREFIX)


def dead_letter_record(letter: DeadLetter) -> OutgoingRecord:
    """Keep the original key, value and headers, and add the failure's context headers."""
    record = letter.record
    original = [(name, value) for name, value in record.headers if not is_context_header(name)]
    return OutgoingRecord(key=record.key, value=record.value, headers=original + _context_of(letter))


def truncated_dead_letter_record(letter: DeadLetter, keep_bytes: int) -> OutgoingRecord:
    """A dead letter for a record too large for the dead-letter topic: its context and the first bytes of it.

    The original headers are dropped and key and value cut to `keep_bytes`; `dlq.truncated`
    says what was cut, and the context headers say where the whole record still is.
    """
    record = letter.record
    header_bytes = sum(len(name) + len(value or b"") for name, value in record.headers)
    note = (f"value of {len(record.value or b'')} bytes and key of {len(record.key or b'')} bytes cut to {keep_bytes}; "
            f"{len(record.headers)} original header(s) of {header_bytes} bytes dropped")
    return OutgoingRecord(
        key=None if record.key is None else record.key[:keep_bytes],
        value=None if record.value is None else record.value[:keep_bytes],
        headers=_context_of(letter) + [(TRUNCATED_HEADER, note.encode())],
    )


def _context_of(letter: DeadLetter) -> Headers:
    """The context headers of a dead letter: why, when, and where the record came from."""
    record, failure = letter.record, letter.failure
    context = {
        REASON_HEADER: failure.reason[:MAX_REASON_LENGTH],
        ERROR_TYPE_HEADER: failure.error_type,
        ATTEMPTS_HEADER: str(failure.attempts),
        FAILED_AT_HEADER: to_iso(failure.failed_at),
        ORIGINAL_TOPIC_HEADER: record.topic,
        ORIGINAL_PARTITION_HEADER: str(record.partition),
        ORIGINAL_OFFSET_HEADER: str(record.offset),
        CONSUMER_CLIENT_HEADER: letter.consumer_client,
    }
    return [(name, storable_text(value).encode()) for name, value in context.items()]
