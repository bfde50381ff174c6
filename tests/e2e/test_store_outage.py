"""A store outage: sends still accepted, records dead-lettered after retries, projected once the store is back."""

import pytest

from infra.process import free_ports, wait_until
from tests.support.api import Api

from .outage import QUICK_STORE_RETRIES, restore, send_during_outage, wait_projected


@pytest.fixture(scope="module")
def store(killable_store):
    """The store this module may kill."""
    return killable_store


@pytest.fixture(scope="module")
def health_port():
    """Where the consumer serves its own /health and /ready."""
    return free_ports(1)[0]


@pytest.fixture(scope="module")
def stack(stack_factory, store, health_port):
    """Producer and clientB consumer with short store timeouts and retry waits."""
    return stack_factory(clients=("clientB",), mongo_uri=store.uri, **QUICK_STORE_RETRIES, CONSUMER_HEALTH_PORT=health_port)


def test_messages_sent_during_a_store_outage_reach_failed_messages_once_it_is_back(stack, store, health_port):
    consumer_health = Api(f"http://127.0.0.1:{health_port}", contract=False)  # a health port, no API document
    wait_until(lambda: consumer_health.get("/ready").status == 200, timeout=20, what="the consumer's /ready")
    first = stack.api.send("clientA", "clientB", "before the outage").body["messageId"]
    wait_until(lambda: [m["messageId"] for m in stack.api.get("/messages", to="clientB").body] == [first],
               timeout=20, what="the first message to be stored")

    receipts = send_during_outage(stack, store, 5)
    ready = stack.api.get("/ready")
    assert ready.status == 503 and ready.body["dependencies"] == {"kafka": "up", "mongodb": "down"}
    consumer_ready = consumer_health.get("/ready")
    assert consumer_ready.status == 503 and consumer_ready.body["dependencies"] == {"kafka": "up", "mongodb": "down"}
    positions = {(r.body["partition"], r.body["offset"]) for r in receipts}
    for letter in stack.dead_letters_of(positions).values():
        headers = dict(letter.headers())
        assert headers["dlq.error-type"] == b"StoreUnavailable" and headers["dlq.attempts"] == b"3"

    restore(stack, store)
    items = wait_projected(stack, {r.body["messageId"] for r in receipts}, to="clientB")
    assert {(item["errorType"], item["attempts"], item["status"]) for item in items} == {("StoreUnavailable", 3, "failed")}
    assert [m["messageId"] for m in stack.api.get("/messages", to="clientB").body] == [first]
    assert consumer_health.get("/ready").status == 200
    log = stack.processes[0].log_path.read_text()
    assert log.count("waiting for mongodb") == 1
    wait_until(lambda: "mongodb recovered" in stack.processes[0].log_path.read_text(), timeout=30,
               what="the consumer to log the store's recovery")
