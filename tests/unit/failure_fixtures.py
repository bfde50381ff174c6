"""Failed-message documents as the projector writes them, for unit tests."""

from datetime import datetime, timedelta, timezone

from consumer_service.application.records import DeadLetter, IncomingRecord
from consumer_service.infrastructure.kafka_dead_letters import dead_letter_record
from consumer_service.infrastructure.mongo_failure_projection import failure_document
from shared_domain.envelope import encode
from shared_domain.failures import Failure
from shared_domain.message import Message

T0 = datetime(2026, 6, 1, tzinfo=timezone.utc)


def failed_document(n: int, to: str = "clientB", error_type: str = "StoreUnavailable", headers=None) -> dict:
    """The projection of the n-th record dead-lettered by clientB's consumer."""
    value = encode(Message(f"m-{n}", "clientA", to, f"text {n}", T0))
    record = IncomingRecord("client-messages", 0, n, to.encode(), value, headers or [("trace-id", b"t")])
    failure = Failure(error_type, "store unavailable", 3, T0 + timedelta(seconds=n))
    letter = dead_letter_record(DeadLetter(record, failure, "clientB"))
    return failure_document(IncomingRecord("client-messages-dlq", 0, n, letter.key, letter.value, letter.headers))
