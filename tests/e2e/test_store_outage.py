"""A store outage: sends still accepted, records dead-lettered after retries, projected once the store is back."""

import pytest

from infra.ferretdb import FerretDBServer
from infra.process import free_ports, wait_until


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A FerretDB of this module's own, so it can be killed without disturbing other tests."""
    server = FerretDBServer(free_ports(1)[0], tmp_path_factory.mktemp("outage-store"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def stack(stack_factory, store):
    """Producer and clientB consumer with short store timeouts and retry waits."""
    return stack_factory(clients=("clientB",), mongo_uri=store.uri, MONGODB_TIMEOUT_MS=500,
                         STORE_RETRY_FIRST_WAIT_S=0.2, STORE_RETRY_ATTEMPTS=3)


def test_messages_sent_during_a_store_outage_reach_failed_messages_once_it_is_back(stack, store):
    first = stack.api.send("clientA", "clientB", "before the outage").body["messageId"]
    wait_until(lambda: [m["messageId"] for m in stack.api.get("/messages", to="clientB").body] == [first],
               timeout=20, what="the first message to be stored")

    store.kill()
    wait_until(lambda: stack.api.get("/ready").body["dependencies"] == {"kafka": "up", "mongodb": "down"},
               timeout=20, what="/ready to report the store down")
    assert stack.api.get("/ready").status == 503
    receipts = [stack.api.send("clientA", "clientB", f"during the outage {n}") for n in range(5)]
    assert [r.status for r in receipts] == [202] * 5
    positions = {(r.body["partition"], r.body["offset"]) for r in receipts}

    letters = stack.dead_letters_of(positions, timeout=60)
    for letter in letters.values():
        headers = dict(letter.headers())
        assert headers["dlq.error-type"] == b"StoreUnavailable" and headers["dlq.attempts"] == b"3"

    store.start()
    wait_until(lambda: stack.api.get("/ready").status == 200, timeout=30, what="/ready once the store is back")
    expected = {r.body["messageId"] for r in receipts}

    def projected():
        items = stack.api.get("/failed-messages", to="clientB", errorType="StoreUnavailable", limit=500).body
        return {item["messageId"] for item in items}

    wait_until(lambda: projected() == expected, timeout=60, what="the dead letters in GET /failed-messages")
    assert [m["messageId"] for m in stack.api.get("/messages", to="clientB").body] == [first]
