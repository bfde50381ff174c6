"""Identities on the real stack: nobody sees what is not theirs, nobody sends as someone else, operators apart."""

import collections
import json
import random
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from infra.process import wait_until
from tests.support.ledgers import LEDGERS
from tests.support.services import BIN

CLIENTS = [f"client{letter}" for letter in "ABCDEFGHIJ"]
SEND_RATE_LIMIT = 60
ATTEMPTS = 1200
SEED = 20261123
ISSUED_HERE: list[str] = []  # tokens made during these tests, which no log may show either


@pytest.fixture(scope="module")
def stack(stack_factory):
    """A consumer for every client and a producer that logs every request, with a small per-client send limit."""
    # These tests fail authentication on purpose, often, from one address: that limit is tested in tests/unit.
    return stack_factory(clients=("*",), SEND_RATE_LIMIT=SEND_RATE_LIMIT, AUTH_FAILURE_LIMIT=100_000, PRODUCER_ACCESS_LOG=1,
                         GUNICORN_CMD_ARGS="--access-logformat '\"%(r)s\" %(s)s'")


@pytest.fixture(scope="module")
def conversations(stack):
    """Every pair of the ten clients exchanges a message; {message id: (from, to)} once all are stored."""
    sent = {}
    for sender in CLIENTS:
        for recipient in CLIENTS:
            if sender != recipient:
                reply = stack.api.send(sender, recipient, f"{sender} to {recipient}", messageId=f"iso-{uuid.uuid4().hex}")
                assert reply.status == 202, reply.body
                sent[reply.body["messageId"]] = (sender, recipient)
    wait_until(lambda: stack.stored_count() >= len(sent), timeout=60, what="every conversation stored")
    return sent


def attempts(count: int, seed: int):
    """(kind, caller, request) tuples: reads of every shape, spoofed sends, operator calls, by random clients."""
    rng = random.Random(seed)
    for _ in range(count):
        caller = rng.choice(CLIENTS)
        other, third = rng.sample([c for c in CLIENTS if c != caller], 2)
        kind = rng.choice(["read", "read", "read", "spoof", "spoof-batch", "operator"])
        if kind == "read":
            params = rng.choice([{}, {"to": other}, {"from": other}, {"with": other}, {"to": other, "from": third},
                                 {"from": other, "to": caller}, {"with": caller}])
            params.update(rng.choice([{}, {"order": "desc"}, {"limit": str(rng.randint(1, 500))}]))
            yield kind, caller, params
        elif kind == "spoof":
            yield kind, caller, {"from": other, "to": rng.choice([caller, third]), "message": "spoofed"}
        elif kind == "spoof-batch":
            yield kind, caller, [{"to": other, "message": "fine"}, {"from": other, "to": third, "message": "spoofed"}]
        else:
            yield kind, caller, rng.choice([("api", "/failed-messages"), ("api", "/clients"), ("operator", "/failed-messages"),
                                            ("operator", "/failed-messages/x:0:1:clientA"),
                                            ("operator", "/failed-message-counts")])


def test_no_client_sees_another_pairs_message_or_sends_as_someone_else(stack, conversations):
    tally = collections.Counter()
    cross_reads, spoofed, leaks = [], [], []
    for kind, caller, request in attempts(ATTEMPTS, SEED):
        as_caller = stack.api.as_(caller)
        tally[kind] += 1
        if kind == "read":
            reply = stack.api.get("/messages", headers=as_caller, **request)
            assert reply.status == 200, reply.body
            cross_reads += [(caller, m) for m in reply.body if caller not in (m["from"], m["to"])]
        elif kind == "spoof":
            reply = stack.api.post("/send-message", request, headers=as_caller)
            if reply.status != 403 or reply.body["error"] != "sender_mismatch":
                spoofed.append((caller, request, reply.status))
        elif kind == "spoof-batch":
            reply = stack.api.post("/send-messages", request, headers=as_caller)
            if [item["status"] for item in reply.body["results"]] != [202, 403]:
                spoofed.append((caller, request, reply.status))
        else:
            server, path = request
            reply = (stack.api if server == "api" else stack.operator).get(path, headers=as_caller)
            if reply.status != 403:
                leaks.append((caller, request, reply.status))
    for caller in CLIENTS:  # and what each one can page through is exactly its own
        visible = {m["messageId"] for m in stack.all_messages_as(caller) if m["messageId"] in conversations}
        assert visible == {i for i, pair in conversations.items() if caller in pair}
    LEDGERS.append(f"ledger[identities]: attempts={sum(tally.values())} ({dict(tally)}) over {len(CLIENTS)} clients, "
                   f"{len(conversations)} conversations | cross-client reads={len(cross_reads)} "
                   f"spoofed sends={len(spoofed)} operator endpoints reached with a client token={len(leaks)}")
    assert not cross_reads and not spoofed and not leaks, (cross_reads[:3], spoofed[:3], leaks[:3])


def test_every_endpoint_answers_a_missing_an_unknown_a_client_and_an_operator_token_as_it_should(stack):
    endpoints = [("GET", "/messages"), ("POST", "/send-message"), ("POST", "/send-messages"), ("GET", "/failed-messages"),
                 ("GET", "/clients"), ("POST", "/clients"), ("GET", "/conversations"), ("GET", "/session"),
                 ("GET", "operator /failed-messages"), ("GET", "operator /failed-message-counts"),
                 ("GET", "operator /failed-messages/x:0:1:clientA"), ("POST", "operator /failed-messages/replay"),
                 ("POST", "operator /failed-messages/discard")]
    bodies = {"/send-message": {"to": "clientB", "message": "m"}, "/send-messages": [{"to": "clientB", "message": "m"}],
              "operator /failed-messages/replay": {"ids": ["x:0:1:clientA"], "dryRun": True},
              "operator /failed-messages/discard": {"ids": ["x:0:1:clientA"], "reason": "r", "dryRun": True},
              "/clients": {"clientId": f"new{uuid.uuid4().hex[:8]}"}}
    credentials = {"none": {}, "unknown": {"Authorization": "Bearer not-a-token"}, "client": stack.api.as_("clientA"),
                   "operator": stack.api.as_("ops")}
    seen = {}
    for method, path in endpoints:
        server, _, route = path.rpartition(" ")
        api = stack.operator if server == "operator" else stack.api
        for name, headers in credentials.items():
            call = api.get(route, headers=headers) if method == "GET" else api.post(route, bodies[path], headers=headers)
            seen[(method, path, name)] = call.status
    for method, path in endpoints:
        answers = {name: seen[(method, path, name)] for name in credentials}
        if path == "/session":  # who is signed in: nobody, for bearer callers
            assert set(answers.values()) == {401}, answers
            continue
        operator_only = path.startswith(("/failed-messages", "/clients", "operator "))
        allowed, refused = ("operator", "client") if operator_only else ("client", "operator")
        assert answers["none"] == answers["unknown"] == 401 and answers[refused] == 403, (method, path, answers)
        assert answers[allowed] < 300 or (answers[allowed] == 404 and path.endswith("x:0:1:clientA")), (method, path, answers)
    LEDGERS.append("ledger[identities by endpoint] (none/unknown/client/operator): " + "; ".join(
        f"{method} {path} {'/'.join(str(seen[(method, path, n)]) for n in credentials)}" for method, path in endpoints))


def test_a_token_revoked_with_the_cli_is_refused_within_two_seconds(stack):
    name = f"revocable{uuid.uuid4().hex[:8]}"
    added = cli(stack, "clients", "add", name, "--name", "Revocable")
    token = json.loads(added.stdout)["token"]
    ISSUED_HERE.append(token)
    headers = {"Authorization": f"Bearer {token}"}
    wait_until(lambda: stack.api.get("/messages", headers=headers).status == 200, timeout=5, what="the new token accepted")
    assert cli(stack, "clients", "revoke", name).returncode == 0
    revoked_at = time.monotonic()
    # Refused by both workers: twenty requests in a row, which the two of them share.
    wait_until(lambda: {stack.api.get("/messages", headers=headers).status for _ in range(20)} == {401}, timeout=5,
               what="the token refused by every worker")
    LEDGERS.append(f"ledger[identities]: a revoked token was refused by every worker after "
                   f"{time.monotonic() - revoked_at:.1f}s")
    assert time.monotonic() - revoked_at < 2.5


def test_the_send_limit_is_shared_by_both_workers(stack):
    headers = stack.api.as_("clientZ")  # sends nothing else
    # The limit counts per fixed minute: start the burst well inside one.
    wait_until(lambda: time.time() % 60 < 45, timeout=20, what="a minute with room for the burst")
    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(lambda n: stack.api.post("/send-message", {"to": "clientA", "message": f"burst {n}"},
                                                          headers=headers).status, range(SEND_RATE_LIMIT * 2)))
    log = Path(stack.logs) / f"producer-{stack.api.base_url.rsplit(':', 1)[1]}.log"

    def refusing_workers() -> set[int]:
        access = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
        return {line["pid"] for line in access if '"POST /send-message HTTP/1.1" 429' in line["message"]}

    # Servers write their lines in batches, within 0.1 s: wait for both workers' refusals, for up to 2 s.
    deadline = time.monotonic() + 2
    while len(workers := refusing_workers()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    LEDGERS.append(f"ledger[identities]: {SEND_RATE_LIMIT * 2} sends in one minute from one client: "
                   f"202 x{statuses.count(202)}, 429 x{statuses.count(429)}, refused by {len(workers)} workers")
    # Never past the limit; at most one unspent block (a twentieth of it) short, which the other worker leased.
    assert SEND_RATE_LIMIT - SEND_RATE_LIMIT // 20 <= statuses.count(202) <= SEND_RATE_LIMIT
    assert statuses.count(202) + statuses.count(429) == len(statuses)
    assert len(workers) == 2, "one worker took every request, so the test proves nothing about sharing"


def test_tokens_never_appear_in_any_log(stack):
    logs = "".join(path.read_text(errors="replace") for path in Path(stack.logs).glob("*.log"))
    assert '\\"POST /send-message HTTP/1.1\\" 202' in logs  # the access log is on (as JSON), so requests were logged
    assert not [token for token in [*stack.api.tokens.values(), *ISSUED_HERE] if token in logs]


def cli(stack, *args: str) -> subprocess.CompletedProcess:
    """Run `producer-service ARGS` against the stack's store."""
    result = subprocess.run([str(BIN / "producer-service"), *args], env=stack.env, capture_output=True, text=True,
                            timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    return result

