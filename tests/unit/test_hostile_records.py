"""Any bytes and headers on the topics: each record is stored, skipped or dead-lettered, and nothing raises."""

from datetime import datetime, timezone

import bson
import mongomock
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumer_service.application.handle_batch import BatchHandler
from consumer_service.application.project_failures import project_dead_letters
from consumer_service.application.records import DeadLetter, IncomingRecord
from consumer_service.application.retry import RetryPolicy
from consumer_service.infrastructure.kafka_dead_letters import dead_letter_record, truncated_dead_letter_record
from consumer_service.infrastructure.mongo_failure_projection import (MongoFailedMessageStore, failure_document,
                                                                      unprojectable_document)
from consumer_service.infrastructure.mongo_store import MongoMessageStore
from shared_domain.envelope import read_envelope
from shared_domain.failures import Failure
from tests.unit.batches import NoStoredEvents, Unobserved, handle_batch
from tests.unit.strategies import incoming_records

HOSTILE = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


class WireSink:
    """Turns dead letters into the records the dead-letter topic would get, as the Kafka sink does."""

    def __init__(self):
        self.records = []

    def send_all(self, letters):
        for letter in letters:
            outgoing = dead_letter_record(letter)
            assert all(isinstance(name, str) and (value is None or isinstance(value, bytes))
                       for name, value in outgoing.headers)
            assert (outgoing.key, outgoing.value) == (letter.record.key, letter.record.value)
            self.records.append(outgoing)


@given(batch=st.lists(incoming_records(), min_size=1, max_size=8), client=st.sampled_from(["*", "clientB"]))
@HOSTILE
def test_any_batch_of_records_is_stored_skipped_or_dead_lettered_without_raising(batch, client):
    database = mongomock.MongoClient(tz_aware=True)["messaging"]
    sink = WireSink()
    handler = BatchHandler(client=client, store=MongoMessageStore(database), dead_letters=sink,
                           stored_events=NoStoredEvents(), store_health=Unobserved(), retry=RetryPolicy(sleep=lambda _seconds: None))
    outcome = handle_batch(batch, handler)
    assert outcome.stored + outcome.skipped + outcome.dead_lettered + outcome.resent == len(batch)
    assert len(sink.records) == outcome.dead_lettered
    for document in database.messages.find():
        bson.encode(document)  # what the real store would be sent


@given(batch=st.lists(incoming_records("client-messages-dlq"), min_size=1, max_size=8))
@HOSTILE
def test_any_dead_letter_record_is_projected_into_a_storable_document(batch):
    database = mongomock.MongoClient(tz_aware=True)["messaging"]
    assert project_dead_letters(batch, MongoFailedMessageStore(database)) == len(batch)
    documents = list(database.failed_messages.find())
    assert documents and len(documents) <= len(batch)
    for document in documents:
        bson.encode(document)


@given(record=incoming_records())
@HOSTILE
def test_a_dead_letter_of_any_record_projects_back_to_its_source_position(record):
    letter = DeadLetter(record, Failure("SchemaViolation", "reason \ud800 quoting input", 1, NOW), "clientB")
    outgoing = dead_letter_record(letter)
    database = mongomock.MongoClient(tz_aware=True)["messaging"]
    read_back = IncomingRecord("client-messages-dlq", 0, 5, outgoing.key, outgoing.value, outgoing.headers)
    project_dead_letters([read_back], MongoFailedMessageStore(database))
    [document] = database.failed_messages.find()
    assert document["source"] == {"topic": record.topic, "partition": record.partition, "offset": record.offset}
    assert document["errorType"] == "SchemaViolation" and "\\ud800" in document["reason"]


class RefusingFailureStore:
    """Refuses the first documents it is given for good, as a store refuses what it cannot hold."""

    document_of = staticmethod(failure_document)
    unprojectable_document = staticmethod(unprojectable_document)

    def __init__(self):
        self.saved, self.calls = [], 0

    def save_all(self, documents):
        self.calls += 1
        if self.calls == 1:
            return {document["_id"]: "too large" for document in documents}
        self.saved += documents
        return {}


def test_a_dead_letter_the_store_refuses_is_kept_as_unprojectable_with_its_raw_bytes():
    record = IncomingRecord("client-messages-dlq", 1, 9, b"clientB", b"\xff\x00payload", [("dlq.error-type", b"X")])
    store = RefusingFailureStore()
    project_dead_letters([record], store)
    [document] = store.saved
    assert document["_id"] == "client-messages-dlq:1:9:unprojectable"
    assert document["errorType"] == "UnprojectableDeadLetter" and "too large" in document["reason"]
    assert (document["payload"], document["payloadEncoding"]) == ("/wBwYXlsb2Fk", "base64")


def test_a_dead_letter_whose_headers_cannot_be_read_is_kept_as_unprojectable():
    record = IncomingRecord("client-messages-dlq", 0, 3, None, b"{}", [], defect="header name is not UTF-8")
    database = mongomock.MongoClient(tz_aware=True)["messaging"]
    project_dead_letters([record], MongoFailedMessageStore(database))
    [document] = database.failed_messages.find()
    assert document["errorType"] == "UnprojectableDeadLetter" and "not UTF-8" in document["reason"]


@pytest.mark.parametrize("value", [b"x" * 200_000, None])
def test_a_truncated_dead_letter_keeps_the_context_and_says_what_was_cut(value):
    record = IncomingRecord("client-messages", 2, 7, b"k" * 100, value, [("big", b"h" * 5000)])
    outgoing = truncated_dead_letter_record(DeadLetter(record, Failure("SchemaViolation", "r", 1, NOW), "*"), 1024)
    headers = dict(outgoing.headers)
    assert "big" not in headers and headers["dlq.original-offset"] == b"7"
    assert len(outgoing.value or b"") <= 1024 and outgoing.key == b"k" * 100
    assert b"dropped" in headers["dlq.truncated"]


def test_a_record_whose_headers_cannot_be_read_is_dead_lettered_not_skipped():
    sink = WireSink()
    record = IncomingRecord("client-messages", 0, 1, b"clientB", b"{}", [], defect="header name is not UTF-8")
    handler = BatchHandler(client="clientB", store=MongoMessageStore(mongomock.MongoClient()["m"]), dead_letters=sink,
                           stored_events=NoStoredEvents(), store_health=Unobserved())
    assert handle_batch([record], handler).dead_lettered == 1
    assert dict(sink.records[0].headers)["dlq.error-type"] == b"UndecodableRecord"


def test_an_unexpected_error_on_one_record_dead_letters_it_and_stores_the_rest(monkeypatch):
    from consumer_service.application import handle_batch as module
    from tests.unit.test_handle_batch import record

    def explode_on_offset_2(value, max_length):
        if b"text 2" in value:
            raise RuntimeError("a bug in decoding")
        return read_envelope(value, max_length)

    monkeypatch.setattr(module, "read_envelope", explode_on_offset_2)
    database = mongomock.MongoClient(tz_aware=True)["messaging"]
    sink = WireSink()
    handler = BatchHandler(client="clientB", store=MongoMessageStore(database), dead_letters=sink,
                           stored_events=NoStoredEvents(), store_health=Unobserved())
    outcome = handle_batch([record(1), record(2), record(3)], handler)
    assert (outcome.stored, outcome.dead_lettered) == (2, 1)
    assert dict(sink.records[0].headers)["dlq.error-type"] == b"RuntimeError"
