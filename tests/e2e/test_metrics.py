"""Prometheus metrics after real traffic: the producer's (every worker added up), a consumer's, the operator server's;
and envelopes of a newer producer, stored beside today's and their unknown fields counted."""

import collections
import json
import subprocess
import urllib.request
import uuid
from datetime import datetime, timezone

import pytest
from pymongo import MongoClient

from infra.process import free_ports, wait_until
from shared_domain.envelope import CONTENT_TYPE, encode
from shared_domain.message import Message
from tests.support.ledgers import LEDGERS
from tests.support.metrics import samples, value
from tests.support.services import BIN
from tests.support.sse import SseStream


@pytest.fixture(scope="module")
def health_port():
    """The port of the consumer's health and metrics server."""
    return free_ports(1)[0]


@pytest.fixture(scope="module")
def stack(stack_factory, health_port):
    """clientB's consumer with its health port on, the producer (two workers) and the operator server.

    A heartbeat each second: a stream whose reader hung up ends at its next write.
    """
    return stack_factory(clients=("clientB",), CONSUMER_HEALTH_PORT=health_port, STREAM_HEARTBEAT_S=1)


def scrape(base_url: str, headers: dict | None = None) -> str:
    """The text of GET /metrics at base_url, sent with these headers."""
    request = urllib.request.Request(base_url + "/metrics", headers=headers or {})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/plain")
        return response.read().decode()


def consumer_metrics(port: int) -> str:
    """The consumer's /metrics, on its health port."""
    return scrape(f"http://127.0.0.1:{port}")


def test_the_producer_counts_requests_publishes_and_open_streams_of_every_worker(stack):
    operator = stack.api.as_("ops")
    for denied, status in ((stack.api.get("/metrics", headers={}), 401),
                           (stack.api.get("/metrics", headers=stack.api.as_("clientA")), 403)):
        assert denied.status == status
    before = scrape(stack.api.base_url, operator)
    for n in range(6):  # new connections each: both workers answer some
        assert stack.api.send("clientA", "clientB", f"counted {n}").status == 202
    assert stack.api.send("clientA", "nobody-registered", "refused").status == 400
    stream = SseStream(stack.api.base_url, stack.api.tokens["clientC"])
    try:
        after = scrape(stack.api.base_url, operator)
        sent = value(after, "http_requests_total", route="/send-message", method="POST", status="202") - value(
            before, "http_requests_total", route="/send-message", method="POST", status="202")
        assert sent == 6
        assert value(after, "http_requests_total", route="/send-message", status="400") >= 1
        assert value(after, "kafka_publish_total", outcome="acked") - value(before, "kafka_publish_total", outcome="acked") == 6
        assert value(after, "http_request_duration_seconds_count", route="/send-message") >= 7
        assert value(after, "live_streams_open") == 1
    finally:
        stream.close()
    wait_until(lambda: value(scrape(stack.api.base_url, operator), "live_streams_open") == 0, timeout=10,
               what="the closed stream no longer counted")


def test_a_consumer_counts_stored_and_dead_lettered_records_batches_lag_and_dependencies(stack, health_port):
    for n in range(3):
        assert stack.api.send("clientA", "clientB", f"for the consumer {n}").status == 202
    stack.produce_raw(b"clientB", b"\xff not a message")
    stored = lambda: value(consumer_metrics(health_port), "consumer_records_total", consumer="consumer[clientB]",
                           outcome="stored")
    wait_until(lambda: stored() >= 3, timeout=30, what="three stored records counted")
    wait_until(lambda: value(consumer_metrics(health_port), "consumer_records_total", consumer="dlq-projector",
                             outcome="projected") >= 1, timeout=30, what="the dead letter projected")
    text = consumer_metrics(health_port)
    assert value(text, "consumer_dead_letters_total", consumer="consumer[clientB]", error_type="UndecodableRecord") == 1
    assert value(text, "consumer_batch_records_count", consumer="consumer[clientB]") >= 1
    assert value(text, "consumer_batch_seconds_sum", consumer="consumer[clientB]") > 0
    lags = [(labels, v) for name, labels, v in samples(text) if name == "consumer_lag_records"]
    assert {labels["consumer"] for labels, _ in lags} == {"consumer[clientB]", "dlq-projector", "views-projector"}
    assert all(v >= 0 for _, v in lags)
    assert value(text, "dependency_up", dependency="mongodb") == value(text, "dependency_up", dependency="kafka") == 1


def test_the_operator_server_counts_its_requests_for_operators_only(stack):
    assert stack.operator.get("/failed-message-counts").status == 200
    assert stack.operator.get("/metrics", headers=stack.operator.as_("clientA")).status == 403
    text = scrape(stack.operator.base_url, stack.operator.as_("ops"))
    assert value(text, "http_requests_total", route="/failed-message-counts", method="GET", status="200") >= 1


def test_a_metrics_reader_registered_with_the_cli_scrapes_both_servers_and_reads_nothing_else(stack):
    added = subprocess.run([str(BIN / "producer-service"), "metrics-readers", "add", "prometheus"], env=stack.env,
                           capture_output=True, text=True, timeout=60)
    assert added.returncode == 0, added.stderr
    reader = {"Authorization": f"Bearer {json.loads(added.stdout)['token']}"}
    # A new token reaches every process within about a second.
    wait_until(lambda: bool(scrape(stack.api.base_url, reader)), timeout=15, what="the producer takes the new token")
    wait_until(lambda: bool(scrape(stack.operator.base_url, reader)), timeout=15, what="the operator server takes it")
    assert value(scrape(stack.api.base_url, stack.api.as_("ops")), "http_requests_total", route="/metrics") >= 1
    for api, path in ((stack.api, "/messages"), (stack.api, "/failed-messages"), (stack.api, "/conversations"),
                      (stack.operator, "/failed-messages"), (stack.operator, "/failed-message-counts")):
        assert api.get(path, headers=reader).status == 403, path


MIXED_SENDS = 40
# What a newer producer might add: a plain field (counted under its own name) and, on some, names no label may carry.
NEWER_FIELDS = [{"priority": "high"}, {"priority": 2, "thread": {"id": 7, "tags": ["a"]}},
                {"priority": None, "x\n\u2028}{": [1.5, True], "\ud800" * 3: "lone surrogates", "y" * 5000: {}}]


def test_envelopes_of_a_newer_producer_are_stored_beside_todays_and_their_fields_counted(stack, health_port):
    run, consumer = uuid.uuid4().hex[:8], "consumer[clientB]"
    counted = lambda: value(consumer_metrics(health_port), "consumer_unknown_envelope_fields_total", consumer=consumer,
                            field="priority")
    handled = lambda: sum(value(consumer_metrics(health_port), "consumer_records_total", consumer=consumer, outcome=outcome)
                          for outcome in ("stored", "dead_lettered"))
    before, handled_before, letters_before = counted(), handled(), stack.dead_letter_count()
    sent, newer = [], set()
    for n in range(MIXED_SENDS):
        message_id = f"mixed-{run}-{n}"
        envelope = json.loads(encode(Message(message_id, "clientA", "clientB", f"mixed {n}", datetime.now(timezone.utc))))
        if n % 2:
            envelope.update(NEWER_FIELDS[n % len(NEWER_FIELDS)])
            newer.add(message_id)
        stack.produce_raw(b"clientB", json.dumps(envelope).encode(),
                                 headers=[("content-type", CONTENT_TYPE.encode()), ("trace-id", message_id.encode())])
        sent.append(message_id)
    stored = collections.Counter()

    def all_stored() -> bool:
        stored.clear()
        stored.update(m["messageId"] for m in stack.all_messages(to="clientB") if m["messageId"] in set(sent))
        return set(stored) == set(sent)

    wait_until(all_stored, timeout=60, what="every mixed-version message stored", process=stack.processes[0])
    # A batch is counted once committed, after its dead letters are written: then the dead-letter topic is complete.
    wait_until(lambda: handled() - handled_before >= MIXED_SENDS, timeout=30, what="the mix counted as handled")
    wait_until(lambda: counted() - before >= len(newer), timeout=15, what="the unknown fields counted")
    dead_lettered = stack.dead_letter_count() - letters_before
    lost, duplicated = set(sent) - set(stored), [m for m, count in stored.items() if count > 1]
    LEDGERS.append(f"ledger[mixed versions]: sent={len(sent)} newer={len(newer)} stored={len(stored)} "
                   f"dead-lettered={dead_lettered} lost={len(lost)} duplicated={len(duplicated)} "
                   f"unknown-field counts: priority={counted() - before:.0f}")
    assert (dead_lettered, len(lost), len(duplicated)) == (0, 0, 0)
    assert counted() - before == len(newer)
    assert value(consumer_metrics(health_port), "consumer_unknown_envelope_fields_total", consumer=consumer,
                 field="other") >= 1
    with MongoClient(stack.env["MONGODB_URI"]) as client:
        documents = list(client[stack.env["MONGODB_DATABASE"]].messages.find({"messageId": {"$in": sorted(newer)}}))
    assert len(documents) == len(newer) and not any({"priority", "thread"} & set(document) for document in documents)
