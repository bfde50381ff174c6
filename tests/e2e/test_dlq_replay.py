"""Operators replay the dead-letter queue: exactly once, dry run, loop guard, poison, interruption."""

import collections
import json
import signal
import subprocess
import uuid

import pytest
from pymongo import MongoClient

from infra.process import wait_until
from tests.support.services import BIN

from .outage import QUICK_STORE_RETRIES, restore, send_during_outage, wait_projected


@pytest.fixture(scope="module")
def store(killable_store):
    """The store this module may kill."""
    return killable_store


@pytest.fixture(scope="module")
def stack(stack_factory, store):
    """Producer and clientB consumer with quick retries and a replay cap of 2."""
    return stack_factory(clients=("clientB",), mongo_uri=store.uri, **QUICK_STORE_RETRIES, REPLAY_MAX_COUNT=2,
                         OPERATOR_TOKEN="e2e-operator-token-of-32-characters-or-more")


def counts(stack, recipient: str) -> collections.Counter:
    """How often each message id is stored for a recipient."""
    return collections.Counter(m["messageId"] for m in stack.all_messages(to=recipient))


def test_replay_after_an_outage_stores_every_message_exactly_once(stack, store):
    replies = send_during_outage(stack, store, 6, recipient="clientB")
    restore(stack, store)
    ids = {r.body["messageId"] for r in replies}
    wait_projected(stack, ids, to="clientB")

    dry = stack.cli("dlq", "replay", "--to", "clientB", "--dry-run")
    assert dry.returncode == 0 and "replayed 6, skipped 0, refused 0, missing 0 (dry run" in dry.stdout
    assert not ids & set(counts(stack, "clientB"))

    done = stack.cli("dlq", "replay", "--to", "clientB", "--by", "ops-test")
    assert done.returncode == 0 and "replayed 6, skipped 0" in done.stdout, done.stdout + done.stderr
    wait_until(lambda: ids <= set(counts(stack, "clientB")), timeout=30, what="the replayed messages in GET /messages")
    assert all(counts(stack, "clientB")[i] == 1 for i in ids)
    items = stack.api.get("/failed-messages", to="clientB", status="replayed", limit=500).body
    assert {i["messageId"] for i in items} >= ids
    assert {i["history"][0]["by"] for i in items if i["messageId"] in ids} == {"ops-test"}

    again = stack.cli("dlq", "replay", "--to", "clientB")
    assert again.returncode == 0 and "replayed 0" in again.stdout
    one = stack.cli("dlq", "replay", items[0]["id"])
    assert "skipped: " in one.stdout and "already replayed" in one.stdout


def test_a_replayed_poison_record_fails_again_linked_to_the_old_failure_until_the_loop_guard_refuses(stack):
    partition, offset = stack.produce_raw(b"clientB", b"\x00\x01 poison for ever")
    failure_id = f"{stack.topics[0]}:{partition}:{offset}:clientB"
    chain = [failure_id]
    for expected_count in (1, 2):
        wait_until(lambda: stack.cli("dlq", "show", chain[-1]).returncode == 0, timeout=30, what=f"failure {chain[-1]}")
        replayed = stack.cli("dlq", "replay", chain[-1])
        assert "replayed 1" in replayed.stdout, replayed.stdout + replayed.stderr

        def next_failure():
            items = stack.api.get("/failed-messages", client="clientB", limit=500).body
            return next((i for i in items if i.get("previousFailureId") == chain[-1]), None)

        wait_until(lambda: next_failure() is not None, timeout=30, what="the replayed poison to fail again")
        follow = next_failure()
        assert follow["replayCount"] == expected_count and follow["errorType"] == "UndecodableRecord"
        chain.append(follow["id"])
    refused = stack.cli("dlq", "replay", chain[-1])
    assert "refused: " in refused.stdout and "cap is 2" in refused.stdout
    forced_dry = stack.cli("dlq", "replay", chain[-1], "--force", "--dry-run")
    assert "replayed 1" in forced_dry.stdout
    shown = json.loads(stack.cli("dlq", "show", chain[0]).stdout)
    assert shown["status"] == "replayed" and shown["history"][0]["replayCount"] == 1
    # The consumer is not stalled by the poison: a normal message still arrives.
    message_id = stack.api.send("clientA", "clientB", "still flowing").body["messageId"]
    wait_until(lambda: counts(stack, "clientB")[message_id] == 1, timeout=30, what="a message after the poison")


def test_an_interrupted_replay_run_again_leaves_no_duplicates(stack, store):
    replies = send_during_outage(stack, store, 20, sender="clientI")
    restore(stack, store)
    ids = {r.body["messageId"] for r in replies}
    wait_projected(stack, ids, **{"from": "clientI"})

    replay = subprocess.Popen([str(BIN / "consumer-service"), "dlq", "replay", "--from", "clientI", "--rate", "8"],
                              env=stack.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    database = MongoClient(store.uri)[stack.env["MONGODB_DATABASE"]]
    replayed = lambda: database.failed_messages.count_documents({"from": "clientI", "status": "replayed"})
    try:
        wait_until(lambda: replayed() >= 5, timeout=30, what="part of the replay")
    finally:
        replay.send_signal(signal.SIGKILL)
        replay.wait(10)
    # The store may still apply the killed run's last update after the process is gone: count once it has stopped.
    counts_seen = [None]  # each read half a second after the one before it
    wait_until(lambda: counts_seen.append(replayed()) or counts_seen[-1] == counts_seen[-2], timeout=10, interval=0.5,
               what="the killed run's last update applied")
    first_part = counts_seen[-1]
    assert 5 <= first_part < 20

    rest = stack.cli("dlq", "replay", "--from", "clientI")
    assert rest.returncode == 0 and f"replayed {20 - first_part}, skipped 0" in rest.stdout, rest.stdout + rest.stderr
    assert replayed() == 20
    wait_until(lambda: ids <= set(counts(stack, "clientB")), timeout=30, what="every replayed message stored")
    stored = counts(stack, "clientB")
    assert [stored[i] for i in ids] == [1] * 20


def test_operators_replay_over_http_with_their_token(stack, store):
    replies = send_during_outage(stack, store, 2, sender="clientH")
    restore(stack, store)
    ids = {r.body["messageId"] for r in replies}
    items = wait_projected(stack, ids, **{"from": "clientH"})
    auth = {"Authorization": "Bearer e2e-operator-token-of-32-characters-or-more"}  # OPERATOR_TOKEN
    assert stack.operator.get(f"/failed-messages/{items[0]['id']}", headers={}).status == 401
    assert stack.operator.get(f"/failed-messages/{items[0]['id']}", headers=stack.operator.as_("clientH")).status == 403
    shown = stack.operator.get(f"/failed-messages/{items[0]['id']}", headers=auth)
    assert shown.status == 200 and shown.body["messageId"] in ids

    dry = stack.operator.post("/failed-messages/replay", {"filter": {"from": "clientH"}, "dryRun": True}, headers=auth)
    assert dry.status == 200 and len(dry.body["done"]) == 2
    done = stack.operator.post("/failed-messages/replay", {"filter": {"from": "clientH"}, "by": "http-op"}, headers=auth)
    assert sorted(done.body["done"]) == sorted(i["id"] for i in items)
    wait_until(lambda: ids <= set(counts(stack, "clientB")), timeout=30, what="the messages replayed over HTTP")
    discard = stack.operator.post(f"/failed-messages/{items[0]['id']}/discard", {"reason": "x"}, headers=auth)
    assert discard.status == 200 and discard.body["skipped"] == {items[0]["id"]: "already replayed"}


def test_operators_discard_poison_by_filter_over_http_recorded_under_their_name(stack):
    # Fields a reader does not know are ignored, so what fails is the missing ones; no other test here misses any.
    value = json.dumps({"schemaVersion": 1, "to": "clientB", f"field{uuid.uuid4().hex}": 1}).encode()
    partition, offset = stack.produce_raw(b"clientB", value)
    failure_id = f"{stack.topics[0]}:{partition}:{offset}:clientB"
    wait_until(lambda: stack.cli("dlq", "show", failure_id).returncode == 0, timeout=30, what=f"failure {failure_id}")
    auth = stack.operator.as_("ops")  # a registered operator
    request = {"filter": {"reasonContains": "missing data", "errorType": "SchemaViolation"}, "reason": "malformed sender",
               "by": "someone else"}

    dry = stack.operator.post("/failed-messages/discard", {**request, "dryRun": True}, headers=auth)
    assert dry.status == 200 and dry.body["done"] == [failure_id]
    done = stack.operator.post("/failed-messages/discard", request, headers=auth)
    assert done.status == 200 and done.body["done"] == [failure_id]
    [item] = [i for i in stack.all_failures(status="discarded", client="clientB") if i["id"] == failure_id]
    assert item["history"][-1]["reason"] == "malformed sender" and item["history"][-1]["by"] == "ops"
    assert f"skipped: {failure_id} (already discarded)" in stack.cli("dlq", "replay", failure_id).stdout
