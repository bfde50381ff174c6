"""Thousands of hostile records and requests mixed with valid sends, against the real stack: the ledger must balance.

Every hostile record is dead-lettered exactly once, every accepted message is stored exactly once,
the consumer (and its dead-letter projector) never dies, and no request gets a 5xx or a non-JSON error.
"""

import collections
import http.client
import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlparse

import pytest
from confluent_kafka import Consumer, Producer
from pymongo import MongoClient

from infra.process import wait_until
from tests.support.hostile import forged_dead_letters, hostile_records, http_requests, number_of
from tests.support.ledgers import LEDGERS
from tests.support.raw_kafka import produce_with_raw_header_names

HOSTILE_RECORDS = 5000
VALID_SENDS = 500
FUZZ_REQUESTS = 1500
FORGED_LETTERS = 20
SEED = 20261123
CANARY_EVERY_S = 0.25
# A canary stored this long after it was accepted means the consumer stood still behind some record.
STALL_S = 30


@pytest.fixture(scope="module")
def stack(stack_factory):
    """Producer plus one consumer for every client."""
    return stack_factory(clients=("*",), AUTH_FAILURE_LIMIT=1_000_000)  # the fuzz fails authentication on purpose


def produce_hostile(stack, records) -> None:
    """Produce the records straight to the message topic, those with raw header names through librdkafka."""
    producer = Producer({"bootstrap.servers": stack.kafka, "acks": "all", "linger.ms": 20,
                         "message.max.bytes": 2_000_000})
    failed = []
    for record in (r for r in records if not r.raw_header_names):
        producer.produce(stack.topics[0], key=record.key, value=record.value, headers=record.headers,
                         on_delivery=lambda error, _record: error and failed.append(error))
        producer.poll(0)
    assert producer.flush(60) == 0 and not failed, failed
    produce_with_raw_header_names(stack.kafka, stack.topics[0],
                                  [(r.key, r.value, [(n if isinstance(n, bytes) else n.encode(), v) for n, v in r.headers])
                                   for r in records if r.raw_header_names])


class HttpTally:
    """What the real HTTP server answered to hostile requests."""

    def __init__(self):
        self.lock = threading.Lock()
        self.statuses = collections.Counter()
        self.bad = []  # (why, method, target, status, body head)
        self.accepted = set()

    def request(self, base: str, method: str, target: str, body: bytes, headers: dict) -> None:
        """Send one request on its own connection and check the answer keeps the promise."""
        address = urlparse(base)
        connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
        try:
            connection.request(method, target, body=body if method not in ("GET", "HEAD") else None, headers=headers)
            response = connection.getresponse()
            payload = response.read()
        finally:
            connection.close()
        problem = _broken_promise(response.status, response.getheader("Content-Type", ""), payload, method)
        with self.lock:
            self.statuses[response.status] += 1
            if problem:
                self.bad.append((problem, method, target, response.status, payload[:200]))
            if response.status in (202, 207) and target.startswith("/send-message"):
                self.accepted |= _accepted_ids(json.loads(payload))


def _broken_promise(status: int, content_type: str, payload: bytes, method: str) -> str | None:
    """Why an answer breaks 'a 2xx, or a 4xx JSON error', or None."""
    if status >= 500:
        return "5xx"
    if 300 <= status < 400:
        return "redirect"
    if status >= 400:
        if not content_type.startswith("application/json"):
            return "non-JSON"
        if method != "HEAD":
            try:
                document = json.loads(payload)
            except ValueError:
                return "non-JSON"
            if not isinstance(document, dict) or set(document) != {"error", "message", "details"}:
                return "non-JSON"
    return None


def _accepted_ids(body: dict) -> set:
    """The message ids a send (one, or a batch with a result per item) accepted."""
    if "results" in body:
        return {item["messageId"] for item in body["results"] if item["status"] == 202}
    return {body["messageId"]} if body.get("status") == "accepted" else set()


def dead_letter_counts(stack) -> tuple[collections.Counter, int]:
    """How many dead letters each hostile record has, and how many letters the topic holds in all."""
    consumer = Consumer({"bootstrap.servers": stack.kafka, "group.id": f"ledger-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([stack.topics[1]])
    counts, total, idle = collections.Counter(), 0, 0
    try:
        while idle < 3:
            batch = consumer.consume(1000, 1.0)
            idle = 0 if batch else idle + 1
            for record in batch:
                if record.error() is None:
                    total += 1
                    number = number_of(record.key())
                    if number is not None:
                        counts[number] += 1
    finally:
        consumer.close()
    return counts, total


def test_hostile_mix_leaves_a_balanced_ledger(stack):
    records = hostile_records(HOSTILE_RECORDS, SEED)
    run = uuid.uuid4().hex[:8]
    valid_ids = [f"valid-{run}-{n}" for n in range(VALID_SENDS)]
    tally = HttpTally()
    send_answers = {}

    def send_valid(message_id: str) -> None:
        send_answers[message_id] = stack.api.send("clientA", "clientB", f"valid {message_id}", messageId=message_id).status

    canaries, hostile_done = {}, threading.Event()

    def send_canaries() -> None:
        """Valid messages all along the hostile run: how long each waits to be stored shows any stall."""
        while not hostile_done.wait(CANARY_EVERY_S):
            message_id = f"canary-{run}-{len(canaries)}"
            canaries[message_id] = stack.api.send("clientA", "clientB", "canary", messageId=message_id).status

    with ThreadPoolExecutor(9) as pool:
        canary_thread = pool.submit(send_canaries)
        producing = pool.submit(produce_hostile, stack, records)
        sends = [pool.submit(send_valid, message_id) for message_id in valid_ids]
        requests = http_requests(FUZZ_REQUESTS, SEED, [stack.api.tokens["clientA"], stack.api.tokens["ops"]])
        fuzz = [pool.submit(tally.request, base_url, *request) for request in requests
                for base_url in (stack.api.base_url, stack.operator.base_url)]
        for future in [producing, *sends, *fuzz]:
            future.result()
        hostile_done.set()
        canary_thread.result()
    forged = forged_dead_letters(FORGED_LETTERS, SEED)
    produce_with_raw_header_names(stack.kafka, stack.topics[1], [(k, v, [(n.encode(), x) for n, x in h]) for k, v, h in forged])
    consumer = stack.processes[0]

    expected_letters = len(records) + len(forged)
    database = MongoClient(stack.env["MONGODB_URI"])[stack.env["MONGODB_DATABASE"]]
    wait_until(lambda: database.failed_messages.count_documents({}) >= expected_letters, timeout=300,
               what=f"{expected_letters} failures projected", process=consumer)
    accepted = {message_id for message_id, status in {**send_answers, **canaries}.items() if status == 202} | tally.accepted
    stored = collections.Counter()

    def all_stored() -> bool:
        stored.clear()
        for recipient in {"clientB", "clientC"}:
            stored.update(m["messageId"] for m in stack.all_messages(to=recipient) if m["messageId"] in accepted)
        return set(stored) >= accepted

    wait_until(all_stored, timeout=120, what="every accepted message stored", process=consumer)
    letters, total_letters = dead_letter_counts(stack)
    waits = sorted((document["storedAt"] - document["sentAt"]).total_seconds() for document in database.messages.find(
        {"messageId": {"$in": list(canaries)}, "from": "clientA"}, {"sentAt": 1, "storedAt": 1}))
    stalls = sum(1 for wait in waits if wait > STALL_S)

    hostile_numbers = set(range(len(records)))
    not_dead_lettered = hostile_numbers - set(letters)
    dead_lettered_twice = {n for n, count in letters.items() if count > 1}
    duplicated = {message_id for message_id, count in stored.items() if count > 1}
    lost = accepted - set(stored)
    deaths = 0 if consumer.alive else 1
    fivexx = sum(1 for problem, *_ in tally.bad if problem == "5xx")
    non_json = sum(1 for problem, *_ in tally.bad if problem != "5xx")
    LEDGERS.append(
        f"ledger[hostile mix]: hostile records={len(records)} (kinds={len({r.kind for r in records})}, "
        f"raw header names={sum(r.raw_header_names for r in records)}, ~1 MB={sum(r.kind == 'near-limit' for r in records)}) "
        f"slow shapes={sum(r.kind == 'unterminated-escapes' for r in records)} "
        f"dead-lettered once={len(hostile_numbers) - len(not_dead_lettered) - len(dead_lettered_twice)} "
        f"forged dead letters={len(forged)} projected failures={database.failed_messages.count_documents({})} | "
        f"valid sends={VALID_SENDS} http requests={FUZZ_REQUESTS} accepted={len(accepted)} stored={len(stored)} | "
        f"canaries={len(waits)} (stored after at most {waits[-1] if waits else 0:.1f} s) consumer stalls={stalls} "
        f"consumer deaths={deaths} lost={len(lost)} duplicated={len(duplicated)} "
        f"not dead-lettered={len(not_dead_lettered)} dead-lettered twice={len(dead_lettered_twice)} "
        f"5xx={fivexx} non-JSON errors={non_json}")
    assert deaths == 0, consumer.log_tail()
    assert waits and stalls == 0, f"canaries waited {waits[-5:]} s to be stored"
    assert not lost and not duplicated
    assert not not_dead_lettered and not dead_lettered_twice, (sorted(not_dead_lettered)[:10], sorted(dead_lettered_twice)[:10])
    assert total_letters == len(records) + len(forged), "a dead letter for something that was not hostile"
    assert not tally.bad, tally.bad[:10]
    assert all(status == 202 for status in {**send_answers, **canaries}.values()), collections.Counter(send_answers.values())
