"""Dead-letter records keep the original and add context; the projection reads them back."""

from datetime import datetime, timezone

from consumer_service.application.records import DeadLetter, IncomingRecord
from consumer_service.infrastructure.kafka_dead_letters import dead_letter_record
from consumer_service.infrastructure.mongo_failure_projection import failure_document
from shared_domain.envelope import encode
from shared_domain.failed_messages import replay_headers
from shared_domain.failures import Failure
from shared_domain.message import Message

FAILED_AT = datetime(2026, 5, 6, 7, 8, 9, 123000, tzinfo=timezone.utc)
ORIGINAL = IncomingRecord("client-messages", 2, 41, b"clientB", b"\xffgarbage", [("trace-id", b"abc"), ("content-type", b"application/json")])


def letter(record=ORIGINAL):
    """A dead letter for a record."""
    return DeadLetter(record, Failure("UndecodableRecord", "value is not UTF-8", 1, FAILED_AT), "clientB")


def as_dlq_record(outgoing, offset=7):
    """What the projector reads back from the dead-letter topic."""
    return IncomingRecord("client-messages-dlq", 0, offset, outgoing.key, outgoing.value, outgoing.headers)


def test_a_dead_letter_keeps_key_value_and_headers_and_adds_context():
    outgoing = dead_letter_record(letter())
    assert (outgoing.key, outgoing.value) == (ORIGINAL.key, ORIGINAL.value)
    assert outgoing.headers[:2] == ORIGINAL.headers
    context = dict(outgoing.headers[2:])
    assert context == {
        "dlq.reason": b"value is not UTF-8", "dlq.error-type": b"UndecodableRecord", "dlq.attempts": b"1",
        "dlq.failed-at": b"2026-05-06T07:08:09.123Z", "dlq.original-topic": b"client-messages",
        "dlq.original-partition": b"2", "dlq.original-offset": b"41", "dlq.consumer-client": b"clientB",
    }


def test_the_projection_of_an_undecodable_record_carries_its_raw_payload():
    document = failure_document(as_dlq_record(dead_letter_record(letter())))
    assert document["_id"] == "client-messages:2:41:clientB"
    assert document["status"] == "failed" and document["attempts"] == 1
    assert document["failedAt"] == FAILED_AT
    assert document["source"] == {"topic": "client-messages", "partition": 2, "offset": 41}
    assert document["deadLetter"] == {"topic": "client-messages-dlq", "partition": 0, "offset": 7}
    assert (document["payload"], document["payloadEncoding"]) == ("/2dhcmJhZ2U=", "base64")
    assert [h["name"] for h in document["headers"]] == ["trace-id", "content-type"]
    assert "messageId" not in document


def test_the_projection_of_a_decodable_record_names_the_message():
    value = encode(Message("m-9", "clientA", "clientB", "hi", FAILED_AT))
    record = IncomingRecord("client-messages", 0, 3, b"clientB", value, [])
    document = failure_document(as_dlq_record(dead_letter_record(letter(record))))
    assert (document["messageId"], document["from"], document["to"]) == ("m-9", "clientA", "clientB")
    assert document["payloadEncoding"] == "utf-8"


def test_the_same_failure_read_twice_projects_to_the_same_id():
    outgoing = dead_letter_record(letter())
    assert failure_document(as_dlq_record(outgoing, 7))["_id"] == failure_document(as_dlq_record(outgoing, 8))["_id"]


def test_a_dead_letter_from_a_newer_consumer_projects_the_same_and_keeps_the_headers_it_does_not_know():
    outgoing = dead_letter_record(letter())
    added = [("dlq.retry-class", b"later"), ("dlq.\u2028 \x00", b"\xff")]
    today = failure_document(as_dlq_record(outgoing))
    newer = failure_document(as_dlq_record(type(outgoing)(outgoing.key, outgoing.value, outgoing.headers + added)))
    assert {**newer, "headers": today["headers"]} == today
    assert [h["name"] for h in newer["headers"]] == ["trace-id", "content-type", "dlq.retry-class", "dlq.\u2028 \x00"]
    replayed = replay_headers([(h["name"], h["value"].encode()) for h in newer["headers"]], 1, today["_id"])
    assert [name for name, _ in replayed] == ["trace-id", "content-type", "replay-count", "replay-of"]
