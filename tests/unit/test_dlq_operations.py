"""Operator use cases: replay and discard, with dry run, loop guard and history."""

import mongomock
import pytest

from consumer_service.application.dlq_operations import Operations, PublishFailed, ReplayPace, discard, replay
from shared_adapters.mongo_failed_messages import MongoFailureRepository
from shared_domain.envelope import decode
from shared_domain.failed_messages import Selection

from .failure_fixtures import T0, failed_document


@pytest.fixture
def collection():
    """A mongomock failed_messages collection holding three failures."""
    database = mongomock.MongoClient(tz_aware=True)["messaging"]
    database.failed_messages.insert_many([failed_document(n) for n in (1, 2, 3)])
    return database.failed_messages


@pytest.fixture
def ops(collection, replayed):
    """Operations on mongomock with a replay cap of 2."""
    return Operations(MongoFailureRepository(collection.database), replayed, operator="alice", replay_cap=2, clock=lambda: T0)


def statuses(collection):
    """Status of each failure document, by message id."""
    return {d["messageId"]: d["status"] for d in collection.find()}


def test_replay_republishes_the_original_record_marked_as_a_replay(ops, replayed, collection):
    report = replay(Selection(), ops)
    assert len(report.done) == 3 and statuses(collection) == {"m-1": "replayed", "m-2": "replayed", "m-3": "replayed"}
    record = replayed.records[0]
    assert record.key == b"clientB" and decode(record.value).message_id == "m-1"
    assert record.headers == [("trace-id", b"t"), ("replay-count", b"1"), ("replay-of", b"client-messages:0:1:clientB")]
    [entry] = collection.find_one({"messageId": "m-1"})["history"]
    assert entry["status"] == "replayed" and entry["by"] == "alice" and entry["replayCount"] == 1


def test_a_dry_run_changes_nothing(ops, replayed, collection):
    report = replay(Selection(), ops, dry_run=True)
    assert len(report.done) == 3 and replayed.records == []
    assert set(statuses(collection).values()) == {"failed"}


def test_a_second_replay_skips_what_was_replayed(ops, replayed):
    replay(Selection(), ops)
    by_filter = replay(Selection(), ops)
    by_id = replay(Selection(ids=("client-messages:0:1:clientB",)), ops)
    assert by_filter.done == [] and by_id.done == [] and by_id.skipped == {"client-messages:0:1:clientB": "already replayed"}
    assert len(replayed.records) == 3


def test_the_loop_guard_refuses_records_replayed_too_often_unless_forced(ops, replayed, collection):
    collection.insert_one({**failed_document(4, headers=[("replay-count", b"2")]), "_id": "again"})
    report = replay(Selection(ids=("again",)), ops)
    assert report.refused and "cap is 2" in report.refused["again"] and replayed.records == []
    forced = replay(Selection(ids=("again",)), ops, force=True)
    assert forced.done == ["again"] and dict(replayed.records[0].headers)["replay-count"] == b"3"


def test_filters_and_limit_choose_what_is_replayed(ops, replayed, collection):
    collection.insert_one(failed_document(9, to="clientC", error_type="SchemaViolation"))
    report = replay(Selection(equals={"to": "clientC"}), ops)
    assert [decode(r.value).message_id for r in replayed.records] == ["m-9"] and len(report.done) == 1
    assert len(replay(Selection(limit=2), ops).done) == 2


def test_unknown_ids_are_reported_missing(ops):
    assert replay(Selection(ids=("nope",)), ops).missing == ["nope"]


def test_a_broker_failure_stops_the_replay_and_leaves_the_record_failed(ops, replayed, collection):
    replayed.down = True
    with pytest.raises(PublishFailed):
        replay(Selection(), ops)
    assert set(statuses(collection).values()) == {"failed"}


def test_discarded_records_keep_the_reason_and_are_not_replayed(ops, replayed, collection):
    report = discard(Selection(ids=("client-messages:0:2:clientB",)), ops, reason="spam")
    assert report.done == ["client-messages:0:2:clientB"]
    [entry] = collection.find_one({"messageId": "m-2"})["history"]
    assert (entry["status"], entry["reason"], entry["by"]) == ("discarded", "spam", "alice")
    assert "client-messages:0:2:clientB" in replay(Selection(ids=("client-messages:0:2:clientB",)), ops).skipped


def test_the_replay_pace_spaces_calls_evenly():
    now, sleeps = [100.0], []

    def sleep(seconds):
        sleeps.append(seconds)
        now[0] += seconds

    pace = ReplayPace(4, clock=lambda: now[0], sleep=sleep)
    for _ in range(5):
        pace()
    assert sleeps == [0.25] * 4


def test_a_filter_on_the_reason_matches_any_case_and_literally(ops, replayed, collection):
    collection.update_one({"messageId": "m-2"}, {"$set": {"reason": "Document (too) LARGE"}})
    report = replay(Selection(reason_contains="(too) large"), ops, dry_run=True)
    assert report.done == ["client-messages:0:2:clientB"]


def test_replay_marks_a_chunk_only_once_the_broker_took_all_of_it(ops, replayed, collection):
    collection.insert_many([failed_document(n) for n in range(4, 8)])
    calls = []

    def publish_all(records):
        calls.append(len(records))
        if len(calls) == 2:
            raise PublishFailed("broker went away")
        replayed.records += records

    replayed.publish_all = publish_all
    with pytest.raises(PublishFailed):
        replay(Selection(), ops, chunk=3)
    assert calls == [3, 3]
    assert sorted(statuses(collection).values()).count("replayed") == 3
    assert len(replayed.records) == 3
