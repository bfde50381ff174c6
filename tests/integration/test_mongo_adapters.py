"""The pymongo adapters against the real MongoDB-protocol server."""

from datetime import datetime, timedelta, timezone

import pytest

from consumer_service.application.ports import Saved
from consumer_service.infrastructure.mongo_failure_projection import MongoFailedMessageStore
from consumer_service.infrastructure.mongo_store import MongoMessageStore, migrate_message_ids
from producer_service.application.failed_messages import FailurePages
from producer_service.application.ports import PageQuery
from producer_service.infrastructure.mongo_readers import MongoReader
from shared_adapters.mongo_client import connect
from shared_adapters.mongo_failed_messages import MongoFailureRepository
from shared_domain.documents import message_view
from shared_domain.failed_messages import Selection, failure_view
from shared_domain.failures import SourcePosition
from shared_domain.message import Message, message_key

T0 = datetime(2026, 2, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def database(mongo, unique):
    """A database of its own on the real server."""
    client = connect(mongo.address, 5000)
    yield client[f"test_{unique}"]
    client.drop_database(f"test_{unique}")
    client.close()


def message(n: int, to: str = "clientB", minutes: int | None = None) -> tuple[Message, SourcePosition]:
    """A message and its Kafka position."""
    sent = T0 + timedelta(minutes=n if minutes is None else minutes)
    return Message(f"m-{n:03d}", "clientA", to, f"text {n}", sent), SourcePosition("client-messages", 0, n)


def test_storing_the_same_messages_twice_keeps_one_copy(database):
    store = MongoMessageStore(database)
    batch = [message(n) for n in range(5)]
    assert store.save_all(batch) == Saved()
    assert store.save_all(batch + [message(5)]) == Saved(), "the same records again: stored, to be announced again"
    assert database.messages.count_documents({}) == 6
    stored = database.messages.find_one({"_id": "clientA/m-003"})
    assert stored["sentAt"] == T0 + timedelta(minutes=3) and stored["source"]["offset"] == 3


def test_a_replay_of_a_record_whose_failed_store_call_stored_it_after_all_counts_as_stored_a_resend_does_not(database):
    store = MongoMessageStore(database)
    first, source = message(1)
    assert store.save_all([(first, source)]) == Saved()  # then the store's answer was lost: dead-lettered
    replay, resend = SourcePosition("client-messages", 0, 20), SourcePosition("client-messages", 0, 21)
    assert store.save_all([(first, replay), (first, resend)], replaying={0: source, 1: message(2)[1]}) == Saved(
        earlier={1}), "the replay is stored, so announced; a record replaying another position is a resend"
    assert database.messages.count_documents({}) == 1


def test_a_message_id_is_the_senders_own_on_the_real_store(database):
    store = MongoMessageStore(database)
    first, source = message(1)
    squatter = (Message(first.message_id, "clientC", "clientB", "squatting", first.sent_at), SourcePosition("client-messages", 0, 7))
    resend = (first, SourcePosition("client-messages", 0, 8))
    reuse = (Message(first.message_id, "clientA", "clientB", "other text", first.sent_at), SourcePosition("client-messages", 0, 9))
    assert store.save_all([squatter]) == Saved()
    assert store.save_all([(first, source), resend, reuse]) == Saved(
        refused={2: "clientA already sent another message with messageId m-001; a message id is used for one message only"},
        earlier={1})
    assert sorted((d["from"], d["message"]) for d in database.messages.find()) == [("clientA", "text 1"),
                                                                                   ("clientC", "squatting")]


def test_the_first_write_creates_the_indexes(database):
    MongoMessageStore(database).save_all([message(1)])
    keys = [tuple(k for k, _ in index["key"].items()) for index in database.messages.list_indexes()]
    assert ("to", "sentAt", "_id") in keys and ("from", "sentAt", "_id") in keys


def test_failures_projected_twice_are_stored_once(database):
    store = MongoFailedMessageStore(database)
    document = {"_id": "client-messages:0:1:clientB", "status": "failed", "failedAt": T0}
    store.save_all([document])
    store.save_all([document, {**document, "_id": "client-messages:0:2:clientB"}])
    assert database.failed_messages.count_documents({}) == 2


def test_the_reader_pages_in_time_then_id_order_with_filters(database):
    store = MongoMessageStore(database)
    store.save_all([message(n, minutes=n // 3) for n in range(9)] + [message(99, to="clientC", minutes=1)])
    reader = MongoReader(database.messages, "sentAt", message_view)
    seen, after = [], None
    while True:
        page = reader.find(PageQuery(equals={"to": "clientB"}, after=after, limit=4))
        seen += [item["messageId"] for item in page]
        if len(page) < 4:
            break
        last = page[-1]
        after = (datetime.fromisoformat(last["sentAt"]), message_key(last["from"], last["messageId"]))
    assert seen == [f"m-{n:03d}" for n in range(9)]
    ranged = reader.find(PageQuery(equals={}, since=T0 + timedelta(minutes=1), until=T0 + timedelta(minutes=2), limit=50))
    assert [item["messageId"] for item in ranged] == ["m-003", "m-004", "m-005", "m-099"]


def test_operators_select_failures_by_filter_and_change_their_status_once(database):
    failures = [{"_id": f"f{n}", "status": "failed", "to": "clientB" if n % 2 else "clientC",
                 "reason": "store unavailable: Connection REFUSED" if n < 3 else "bad", "failedAt": T0 + timedelta(seconds=n),
                 "history": []} for n in range(5)]
    MongoFailedMessageStore(database).save_all(failures)
    repository = MongoFailureRepository(database)
    chosen = repository.select(Selection(equals={"to": "clientB"}, reason_contains="connection refused"))
    assert [d["_id"] for d in chosen] == ["f1"]
    assert [d["_id"] for d in repository.select(Selection(since=T0 + timedelta(seconds=3), limit=1))] == ["f3"]
    entry = {"status": "replayed", "by": "x", "operation": "op-1"}
    assert repository.change_status(["f1", "f3"], "failed", "replayed", entry) == {"f1", "f3"}
    again = {"status": "replayed", "by": "y", "operation": "op-2"}
    assert repository.change_status(["f1", "f2"], "failed", "replayed", again) == {"f2"}
    assert [h["by"] for h in repository.select(Selection(ids=("f1",)))[0]["history"]] == ["x"]


def test_failures_are_listed_without_their_payloads_and_shown_whole(database):
    from tests.unit.failure_fixtures import failed_document

    documents = [failed_document(n) for n in range(6)]
    for document in documents[::2]:
        document["payload"] = "p" * 900_000  # a near-1 MB record the listing must not drag along
    assert MongoFailedMessageStore(database).save_all(documents) == {}
    assert database.failed_message_records.count_documents({}) == 6
    assert database.failed_messages.count_documents({"payload": {"$exists": True}}) == 0
    listed = FailurePages(MongoFailureRepository(database)).find(PageQuery(equals={}, limit=6))
    assert [item["id"] for item in listed] == [d["_id"] for d in documents]
    assert not {"payload", "headers", "key", "deadLetter"} & {name for item in listed for name in item}
    [whole] = MongoFailureRepository(database).select(Selection(ids=(documents[2]["_id"],)))
    view = failure_view(whole)
    assert len(view["payload"]) == 900_000 and view["headers"] == [{"name": "trace-id", "value": "t", "encoding": "utf-8"}]
    ids = tuple(d["_id"] for d in reversed(documents))
    assert [d["_id"] for d in MongoFailureRepository(database).select(Selection(ids=ids), records=False)] == [d["_id"] for d in documents]


def test_a_failure_whose_record_cannot_be_stored_leaves_no_summary(database):
    from tests.unit.failure_fixtures import failed_document

    fine, unstorable = failed_document(1), failed_document(2)
    unstorable["headers"] = [{"name": "n", "value": 2**70, "encoding": "utf-8"}]  # beyond BSON's 64-bit integers
    refused = MongoFailedMessageStore(database).save_all([fine, unstorable])
    assert list(refused) == [unstorable["_id"]] and "BSON" in refused[unstorable["_id"]]
    assert [d["_id"] for d in database.failed_messages.find()] == [fine["_id"]]


def test_the_first_failure_creates_an_index_for_every_listing_filter(database):
    MongoFailedMessageStore(database).save_all([{"_id": "f", "status": "failed", "failedAt": T0}])
    keys = {tuple(index["key"]) for index in database.failed_messages.list_indexes()}
    for field in ("to", "from", "errorType", "consumerClient"):
        assert (field, "failedAt", "_id") in keys
    assert ("status", "failedAt", "_id") in keys and ("failedAt", "_id") in keys


def test_rate_limit_windows_are_shared_by_every_limiter_on_the_store(database):
    from shared_adapters.mongo_rate_limits import MongoRateLimiter

    now = [1_000_000.0]
    first, second = (MongoRateLimiter(database, clock=lambda: now[0]) for _ in range(2))  # two worker processes
    answers = [limiter.hit("send:clientA", 3, 60) for limiter in (first, second, first, second)]
    assert answers[:3] == [None, None, None] and 0 < answers[3] <= 60
    assert first.hit("send:clientB", 3, 60) is None
    now[0] += 60
    assert second.hit("send:clientA", 3, 60) is None  # a new window
    assert database.rate_limits.count_documents({"_id": {"$regex": "^send:clientA@"}}) >= 1


def test_concurrent_hits_from_two_processes_never_pass_the_limit(database):
    from concurrent.futures import ThreadPoolExecutor

    from shared_adapters.mongo_rate_limits import MongoRateLimiter

    limiters = [MongoRateLimiter(database, clock=lambda: 2_000_000.0) for _ in range(2)]
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda n: limiters[n % 2].hit("send:clientC", 40, 60, cost=1 + n % 3), range(60)))
    costs = [1 + n % 3 for n in range(60)]
    allowed = sum(cost for cost, answer in zip(costs, answers) if answer is None)
    assert 40 - 2 * 2 <= allowed <= 40  # never past the limit; refused early by at most an unspent block (of 2)
    blocks = [document["_id"] for document in database.rate_limits.find({"_id": {"$regex": "^send:clientC@"}})]
    window = min(block.split("@")[1].split("/")[0] for block in blocks)  # (the next window's first is leased ahead)
    assert len([block for block in blocks if block.startswith(f"send:clientC@{window}/")]) == 20  # each leased once


def test_identities_are_found_by_token_and_revoked_on_the_real_store(database):
    from shared_adapters.mongo_identities import MongoIdentityRegistry
    from shared_domain.identity import CLIENT, OPERATOR, Principal

    now = [0.0]
    registry = MongoIdentityRegistry(database, clock=lambda: now[0])
    registry.add(CLIENT, "clientA", "Client A")
    registry.add(OPERATOR, "ops")
    _, token = registry.issue_token(CLIENT, "clientA", "laptop")
    _, spare = registry.issue_token(CLIENT, "clientA", "phone")
    _, operator = registry.issue_token(OPERATOR, "ops")
    assert registry.principal_of(token) == Principal(CLIENT, "clientA") and registry.is_client("clientA")
    assert registry.principal_of(operator) == Principal(OPERATOR, "ops") and registry.principal_of("guess") is None
    stored = str(list(database.clients.find()))
    assert token not in stored and spare not in stored
    [listed] = registry.listing(CLIENT)
    registry.revoke(CLIENT, "clientA", listed["tokens"][0]["id"])
    now[0] += 1.01
    assert registry.principal_of(token) is None and registry.principal_of(spare) == Principal(CLIENT, "clientA")


def test_messages_stored_under_their_id_alone_move_to_their_senders_key_once(database):
    old = [{"_id": f"old-{n}", "from": "clientA", "to": "clientB", "message": f"text {n}", "sentAt": T0,
            "source": {"topic": "client-messages", "partition": 0, "offset": n}} for n in range(7)]
    database.messages.insert_many(old)
    MongoMessageStore(database).save_all([message(1)])
    assert migrate_message_ids(database, batch=3) == 7
    assert migrate_message_ids(database) == 0
    moved = {d["_id"]: d["messageId"] for d in database.messages.find()}
    assert moved == {**{f"clientA/old-{n}": f"old-{n}" for n in range(7)}, "clientA/m-001": "m-001"}
