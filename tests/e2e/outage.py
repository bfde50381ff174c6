"""Helpers to dead-letter messages by taking the store away."""

from infra.process import wait_until

# A consumer that gives up on the store quickly, so that an outage dead-letters within seconds.
QUICK_STORE_RETRIES = {"MONGODB_TIMEOUT_MS": 500, "STORE_RETRY_FIRST_WAIT_S": 0.2, "STORE_RETRY_ATTEMPTS": 3}


def send_during_outage(stack, store, count: int, sender: str = "clientA", recipient: str = "clientB") -> list:
    """Kill the store, send `count` messages (all must get 202), wait for their dead letters; return the replies."""
    store.kill()
    wait_until(lambda: stack.api.get("/ready").body["dependencies"]["mongodb"] == "down",
               timeout=20, what="/ready to report the store down")
    replies = [stack.api.send(sender, recipient, f"during the outage {n}") for n in range(count)]
    assert [reply.status for reply in replies] == [202] * count, [(r.status, r.body) for r in replies]
    stack.dead_letters_of({(r.body["partition"], r.body["offset"]) for r in replies}, timeout=90)
    return replies


def restore(stack, store) -> None:
    """Bring the store back and wait until the producer sees it."""
    store.start()
    wait_until(lambda: stack.api.get("/ready").status == 200, timeout=30, what="/ready once the store is back")


def wait_projected(stack, message_ids: set, **filters) -> list[dict]:
    """Wait until every message id has a failure in GET /failed-messages; return those items."""
    def items():
        listed = stack.api.get("/failed-messages", limit=500, **filters).body
        return [item for item in listed if item.get("messageId") in message_ids]

    wait_until(lambda: {item["messageId"] for item in items()} >= message_ids, timeout=60,
               what="the failures in GET /failed-messages")
    return items()
