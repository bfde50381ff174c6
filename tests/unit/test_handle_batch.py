"""Handling a batch: store what is ours, skip the rest, dead-letter what cannot be stored."""

import json
import uuid
from dataclasses import replace
from datetime import datetime, timezone

import mongomock
import pytest

from consumer_service.application.errors import DeadLetterUnavailable, StoredEventsUnavailable, StoreUnavailable
from consumer_service.application.handle_batch import BatchHandler, complete_batch, prepare_batch
from tests.unit.batches import NoStoredEvents, Unobserved, handle_batch
from consumer_service.application.ports import Saved
from consumer_service.application.records import IncomingRecord
from consumer_service.application.retry import RetryPolicy
from consumer_service.infrastructure.mongo_store import MongoMessageStore
from shared_adapters.logs import JsonFormatter
from shared_domain.envelope import encode
from shared_domain.failed_messages import REPLAY_OF_HEADER, failure_id
from shared_domain.message import Message

NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=timezone.utc)


class FakeSink:
    """Collects dead letters; can be told to fail."""

    def __init__(self, fail: bool = False):
        self.letters = []
        self.fail = fail

    def send_all(self, letters):
        if self.fail:
            raise DeadLetterUnavailable("broker down")
        self.letters += letters


class FlakyStore:
    """Raises StoreUnavailable a number of times, then delegates to a real store."""

    def __init__(self, inner, failures: int):
        self.inner, self.failures, self.calls = inner, failures, 0

    def save_all(self, messages, replaying=None):
        self.calls += 1
        if self.calls <= self.failures:
            raise StoreUnavailable("connection refused")
        return self.inner.save_all(messages, replaying)


class RefusingStore:
    """Refuses one message id for good."""

    def __init__(self, refused_id):
        self.refused_id = refused_id

    def save_all(self, messages, replaying=None):
        return Saved(refused={index: "document too large" for index, (message, _) in enumerate(messages)
                              if message.message_id == self.refused_id})


def record(offset: int, to: str = "clientB", message_id: str | None = None, value: bytes | None = None, key=None,
           sender: str = "clientA", text: str | None = None):
    """An incoming record carrying a valid envelope unless `value` is given."""
    if value is None:
        value = encode(Message(message_id or f"m-{offset}", sender, to, text or f"text {offset}", NOW))
    return IncomingRecord("client-messages", 0, offset, key if key is not None else to.encode(), value, [("trace-id", b"t")])


@pytest.fixture
def database():
    """A fresh mongomock database."""
    return mongomock.MongoClient(tz_aware=True)["messaging"]


@pytest.fixture
def waits():
    """The backoff waits the retry policy asked for."""
    return []


def handler_for(client, store, sink, waits, attempts=3):
    """A batch handler whose retries record their waits instead of sleeping."""
    return BatchHandler(client=client, store=store, dead_letters=sink, stored_events=NoStoredEvents(),
                        store_health=Unobserved(), retry=RetryPolicy(attempts=attempts, first_wait=1.0, max_wait=30.0, sleep=waits.append),
                        clock=lambda: NOW)


def test_messages_for_the_client_are_stored_and_others_skipped(database, waits):
    sink = FakeSink()
    outcome = handle_batch([record(1), record(2, to="clientC"), record(3)],
                           handler_for("clientB", MongoMessageStore(database), sink, waits))
    assert (outcome.stored, outcome.skipped, outcome.dead_lettered) == (2, 1, 0)
    assert sorted(d["messageId"] for d in database.messages.find()) == ["m-1", "m-3"]


def test_a_consumer_for_all_clients_keeps_everything(database, waits):
    outcome = handle_batch([record(1, to="clientB"), record(2, to="clientC")],
                           handler_for("*", MongoMessageStore(database), FakeSink(), waits))
    assert outcome.stored == 2


def test_a_redelivered_batch_stores_nothing_twice(database, waits):
    handler = handler_for("clientB", MongoMessageStore(database), FakeSink(), waits)
    batch = [record(1), record(2), record(3, message_id="m-1")]
    handle_batch(batch, handler)
    handle_batch(batch, handler)
    assert database.messages.count_documents({}) == 2


@pytest.mark.parametrize("value, error_type", [
    (b"\xff\x00 not text", "UndecodableRecord"),
    (b'{"to": "clientB", "message": "no envelope"}', "SchemaViolation"),
])
def test_poison_is_dead_lettered_at_once_without_retries(database, waits, value, error_type):
    sink = FakeSink()
    outcome = handle_batch([record(1, value=value), record(2)], handler_for("clientB", MongoMessageStore(database), sink, waits))
    assert outcome.dead_lettered == 1 and outcome.stored == 1
    [letter] = sink.letters
    assert (letter.failure.error_type, letter.failure.attempts, letter.record.offset) == (error_type, 1, 1)
    assert waits == []


def test_envelopes_with_fields_of_a_newer_producer_are_stored_and_the_fields_counted(database, waits):
    sink = FakeSink()
    newer = [record(n, value=json.dumps({**json.loads(record(n).value), **extras}).encode())
             for n, extras in ((2, {"priority": "high"}), (3, {"priority": 1, "thread": {"id": 7}}))]
    outcome = handle_batch([record(1), *newer], handler_for("clientB", MongoMessageStore(database), sink, waits))
    assert (outcome.stored, outcome.dead_lettered) == (3, 0)
    assert outcome.unknown_fields == {"priority": 2, "thread": 1}
    assert all(set(d) >= {"messageId", "message"} and not set(d) & {"priority", "thread"} for d in database.messages.find())


def test_a_newer_major_version_is_dead_lettered_as_unsupported_for_its_recipient(database, waits):
    sink = FakeSink()
    future = json.dumps({"schemaVersion": 2, "to": "clientB", "body": "hi"}).encode()
    outcome = handle_batch([record(1, value=future)], handler_for("clientB", MongoMessageStore(database), sink, waits))
    assert outcome.dead_lettered == 1 and outcome.dead_letter_types == {"UnsupportedSchemaVersion": 1}
    assert handle_batch([record(1, value=future)], handler_for("clientC", MongoMessageStore(database), FakeSink(),
                                                                 waits)).skipped == 1


def test_poison_for_another_client_is_left_to_that_client(database, waits):
    sink = FakeSink()
    poison = json.dumps({"to": "clientC", "message": 1}).encode()
    outcome = handle_batch([record(1, to="clientC", value=poison)], handler_for("clientB", MongoMessageStore(database), sink, waits))
    assert outcome.skipped == 1 and sink.letters == []


def test_poison_with_no_recipient_is_kept_by_every_consumer(database, waits):
    sink = FakeSink()
    handle_batch([record(1, value=b"garbage", key=b"")], handler_for("clientB", MongoMessageStore(database), sink, waits))
    assert len(sink.letters) == 1


def test_transient_store_errors_are_retried_with_growing_waits(database, waits):
    store = FlakyStore(MongoMessageStore(database), failures=2)
    outcome = handle_batch([record(1)], handler_for("clientB", store, FakeSink(), waits))
    assert outcome.stored == 1 and store.calls == 3
    assert len(waits) == 2 and 1.0 <= waits[0] <= 2.0 and 2.0 <= waits[1] <= 3.0


def test_exhausted_retries_dead_letter_every_message_with_the_attempts(database, waits):
    sink = FakeSink()
    store = FlakyStore(MongoMessageStore(database), failures=99)
    outcome = handle_batch([record(1), record(2)], handler_for("clientB", store, sink, waits, attempts=4))
    assert outcome.dead_lettered == 2 and store.calls == 4
    assert {(x.failure.error_type, x.failure.attempts) for x in sink.letters} == {("StoreUnavailable", 4)}
    assert database.messages.count_documents({}) == 0


def test_a_message_the_store_refuses_for_good_is_dead_lettered(waits):
    sink = FakeSink()
    outcome = handle_batch([record(1), record(2)], handler_for("clientB", RefusingStore("m-2"), sink, waits))
    assert outcome.stored == 1
    assert [(x.record.offset, x.failure.error_type, x.failure.reason) for x in sink.letters] == [(2, "StoreRejected", "document too large")]


def test_an_unavailable_dead_letter_topic_stops_the_batch(database, waits):
    with pytest.raises(DeadLetterUnavailable):
        handle_batch([record(1, value=b"garbage")], handler_for("clientB", MongoMessageStore(database), FakeSink(fail=True), waits))


class FakeEvents:
    """Collects stored events as (offset, message id); can be told to fail."""

    def __init__(self, fail: bool = False):
        self.events, self.fail = [], fail

    def publish_stored(self, stored):
        if not self.fail:
            self.events += [(record.offset, message.message_id) for record, message in stored]
        return self._acknowledged

    def _acknowledged(self):
        if self.fail:
            raise StoredEventsUnavailable("broker down")


def test_each_stored_message_is_announced_once_stored_and_nothing_else_is(database, waits):
    events, sink = FakeEvents(), FakeSink()
    handler = replace(handler_for("clientB", RefusingStore("m-4"), sink, waits), stored_events=events)
    handle_batch([record(1), record(2, to="clientC"), record(3, value=b"garbage"), record(4), record(5)], handler)
    assert events.events == [(1, "m-1"), (5, "m-5")], "skipped, poison and refused records are not announced"
    assert {letter.record.offset for letter in sink.letters} == {3, 4}


def test_a_redelivered_batch_announces_its_messages_again(database, waits):
    events = FakeEvents()
    handler = replace(handler_for("clientB", MongoMessageStore(database), FakeSink(), waits), stored_events=events)
    handle_batch([record(1)], handler)
    handle_batch([record(1)], handler)
    assert events.events == [(1, "m-1"), (1, "m-1")]
    assert database.messages.count_documents({}) == 1


def test_unannounced_messages_stop_the_batch_before_any_dead_letter_is_written(database, waits):
    sink = FakeSink()
    handler = replace(handler_for("clientB", MongoMessageStore(database), sink, waits), stored_events=FakeEvents(fail=True))
    with pytest.raises(StoredEventsUnavailable):
        handle_batch([record(1), record(2, value=b"garbage")], handler)
    assert sink.letters == [], "read again, the batch would otherwise dead-letter its poison twice"


def test_two_senders_may_use_the_same_message_id_without_touching_each_other(database, waits):
    events = FakeEvents()
    handler = replace(handler_for("clientB", MongoMessageStore(database), FakeSink(), waits), stored_events=events)
    squatter = record(1, message_id="chosen-id", sender="clientC", text="first, with someone else's id")
    outcome = handle_batch([squatter], handler)
    outcome = handle_batch([record(2, message_id="chosen-id", sender="clientA", text="the real one")], handler)
    assert outcome.stored == 1 and events.events == [(1, "chosen-id"), (2, "chosen-id")]
    stored = {(d["from"], d["messageId"]): d["message"] for d in database.messages.find()}
    assert stored == {("clientC", "chosen-id"): "first, with someone else's id", ("clientA", "chosen-id"): "the real one"}


def test_a_resend_by_the_same_sender_is_stored_once_and_announced_once(database, waits):
    events = FakeEvents()
    handler = replace(handler_for("clientB", MongoMessageStore(database), FakeSink(), waits), stored_events=events)
    handle_batch([record(1, message_id="once", text="hello")], handler)
    outcome = handle_batch([record(7, message_id="once", text="hello"), record(8, message_id="once", text="hello")],
                           handler)
    assert (outcome.stored, outcome.resent, outcome.dead_lettered) == (0, 2, 0)
    assert events.events == [(1, "once")], "only the record that stored it announces it"
    assert database.messages.count_documents({}) == 1


def test_a_replay_of_a_record_dead_lettered_although_its_message_was_stored_announces_the_message(database, waits):
    events = FakeEvents()
    handler = replace(handler_for("clientB", MongoMessageStore(database), FakeSink(), waits), stored_events=events)
    handle_batch([record(1, message_id="unsure", text="hello")], replace(handler, stored_events=NoStoredEvents()))
    # The store's answer to record 1 was lost: it was dead-lettered, never announced. An operator replays it.
    replayed = replace(record(9, message_id="unsure", text="hello"),
                       headers=[(REPLAY_OF_HEADER, failure_id(record(1).position, "clientB").encode())])
    outcome = handle_batch([replayed], handler)
    assert (outcome.stored, outcome.resent) == (1, 0) and events.events == [(9, "unsure")]
    assert database.messages.count_documents({}) == 1


def test_a_sender_reusing_its_message_id_for_other_text_is_dead_lettered_and_the_first_kept(database, waits):
    sink = FakeSink()
    handler = handler_for("clientB", MongoMessageStore(database), sink, waits)
    handle_batch([record(1, message_id="reused", text="original")], handler)
    outcome = handle_batch([record(2, message_id="reused", text="something else")], handler)
    [letter] = sink.letters
    assert outcome.dead_lettered == 1 and letter.record.offset == 2
    assert letter.failure.error_type == "StoreRejected" and "messageId reused" in letter.failure.reason
    assert [d["message"] for d in database.messages.find()] == ["original"]


def test_a_large_batch_is_logged_in_info_lines_each_small_enough_for_a_log_shipper_and_together_naming_every_message(
        database, waits, caplog):
    caplog.set_level("INFO", logger="consumer_service.application.handle_batch")
    ids = [f"{uuid.UUID(int=n)}" for n in range(500)]  # message ids as the producer makes them
    traced = [replace(record(n, message_id=ids[n]), headers=[("trace-id", uuid.uuid4().hex.encode())]) for n in range(500)]
    handle_batch(traced, handler_for("clientB", MongoMessageStore(database), FakeSink(), waits))
    lines = [line for line in caplog.records if line.getMessage() == "messages stored"]
    assert [message_id for line in lines for message_id in line.messageIds] == ids
    assert [position for line in lines for position in line.positions] == [f"0:{n}" for n in range(500)]
    assert all(len(JsonFormatter().format(line)) < 16 * 1024 for line in lines), "Docker's json-file splits longer lines"


def test_a_batch_stored_is_one_info_line_naming_each_message_trace_and_position_and_each_message_a_debug_line(
        database, waits, caplog):
    caplog.set_level("DEBUG", logger="consumer_service.application.handle_batch")
    handle_batch([record(1), record(2, to="clientC"), record(3)], handler_for("clientB", MongoMessageStore(database), FakeSink(), waits))
    info = [line for line in caplog.records if line.levelname == "INFO"]
    assert [(line.getMessage(), line.messageIds, line.traceIds, line.positions) for line in info] == [
        ("messages stored", ["m-1", "m-3"], ["t", "t"], ["0:1", "0:3"])]
    debug = [(line.getMessage(), line.messageId, line.offset) for line in caplog.records if line.levelname == "DEBUG"]
    assert debug == [("message stored", "m-1", 1), ("message stored", "m-3", 3)]


def test_a_batch_is_announced_when_the_loop_asks_and_once_however_often_it_asks(database, waits):
    events = FakeEvents()
    handler = replace(handler_for("clientB", MongoMessageStore(database), FakeSink(), waits), stored_events=events)
    outcome = complete_batch(prepare_batch([record(1), record(2)], handler), handler)
    assert outcome.stored == 2 and events.events == [], "announced before the loop asked: the store waits for it"
    outcome.acknowledged()
    outcome.acknowledged()
    assert events.events == [(1, "m-1"), (2, "m-2")], "each stored message is announced once"


def test_a_batch_with_dead_letters_is_announced_before_they_are_written(database, waits):
    events, sink = FakeEvents(), FakeSink()
    handler = replace(handler_for("clientB", MongoMessageStore(database), sink, waits), stored_events=events)
    outcome = complete_batch(prepare_batch([record(1), record(2, value=b"garbage")], handler), handler)
    assert events.events == [(1, "m-1")] and len(sink.letters) == 1
    outcome.acknowledged()
    assert events.events == [(1, "m-1")], "announced twice"
