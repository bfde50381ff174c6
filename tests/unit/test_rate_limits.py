"""The rate limiter's leases: no client's lease write holds up another's send, and windows end at different times."""

import sys
import threading
from concurrent.futures import ThreadPoolExecutor

from pymongo.errors import ServerSelectionTimeoutError

from infra.process import wait_until
from shared_domain.availability import StoreUnavailable
from shared_adapters.mongo_rate_limits import COLLECTION, MongoRateLimiter


class _GatedBlocks:
    """A lease collection whose writes for keys starting with `gated` wait until the gate opens."""

    def __init__(self, gated: str):
        self.gated, self.gate, self.waiting, self.written = gated, threading.Event(), threading.Event(), []

    def insert_one(self, document: dict) -> None:
        if document["_id"].startswith(self.gated):
            self.waiting.set()
            assert self.gate.wait(10), "the gate was never opened"
        self.written.append(document["_id"])

    def create_index(self, *args, **kwargs) -> None:
        pass


def test_a_slow_lease_write_for_one_client_does_not_hold_up_another_client():
    blocks = _GatedBlocks("send:slow@")
    limiter = MongoRateLimiter({COLLECTION: blocks}, clock=lambda: 3_000_000.0)
    with ThreadPoolExecutor(2) as pool:
        slow = pool.submit(limiter.hit, "send:slow", 600, 60)
        assert blocks.waiting.wait(5)  # the slow client's lease is being written
        fast = pool.submit(limiter.hit, "send:fast", 600, 60)
        try:
            assert fast.result(timeout=5) is None  # answered while the slow client's lease is still being written
            assert not slow.done() and "send:fast" in [block.split("@")[0] for block in blocks.written]
        finally:
            blocks.gate.set()
        assert slow.result(timeout=5) is None


def test_each_clients_window_ends_at_a_time_of_its_own_and_then_it_may_send_again():
    now = [3_000_000.0]
    limiter = MongoRateLimiter({COLLECTION: _GatedBlocks("none")}, clock=lambda: now[0])
    clients = [f"send:client{n}" for n in range(100)]
    assert all(limiter.hit(client, 1, 60) is None for client in clients)
    waits = {client: limiter.hit(client, 1, 60) for client in clients}  # each is refused until its window ends
    assert all(0 < wait <= 60 for wait in waits.values())
    # Spread over the minute: the leases of many clients are not all renewed in the same second.
    assert len({round(wait) for wait in waits.values()}) > 40 and max(waits.values()) - min(waits.values()) > 45
    for client, wait in sorted(waits.items(), key=lambda item: item[1]):
        now[0] = 3_000_000.0 + wait
        assert limiter.hit(client, 1, 60) is None, client


class _RecordingBlocks:
    """A lease collection that notes which thread wrote each block."""

    def __init__(self):
        self.writers: dict[str, str] = {}

    def insert_one(self, document: dict) -> None:
        self.writers[document["_id"]] = threading.current_thread().name

    def create_index(self, *args, **kwargs) -> None:
        pass


def test_a_steady_clients_next_window_is_leased_in_the_background_so_no_send_waits_for_it():
    now = [3_000_000.0]
    blocks = _RecordingBlocks()
    limiter = MongoRateLimiter({COLLECTION: blocks}, clock=lambda: now[0])
    caller = threading.current_thread().name
    assert limiter.hit("send:steady", 600, 60) is None
    wait_until(lambda: len(blocks.writers) == 2, timeout=5, what="the next window's first block leased")
    this_window, next_window = sorted(blocks.writers, key=lambda block: int(block.split("@")[1].split("/")[0]))
    assert blocks.writers[this_window] == caller  # a client's very first send leases on the request path
    assert next_window.endswith("/0") and blocks.writers[next_window].startswith("rate-limit-ahead")
    now[0] += 60
    assert limiter.hit("send:steady", 600, 60) is None  # the next window: its block was already there
    assert [block for block, writer in blocks.writers.items() if writer == caller] == [this_window]


class _StuckBackground(_RecordingBlocks):
    """Writes from the background thread wait until the gate opens."""

    def __init__(self):
        super().__init__()
        self.gate, self.waiting = threading.Event(), threading.Event()

    def insert_one(self, document: dict) -> None:
        if threading.current_thread().name.startswith("rate-limit-ahead"):
            self.waiting.set()
            assert self.gate.wait(10), "the gate was never opened"
        super().insert_one(document)


def test_a_send_does_not_wait_behind_other_clients_leases_queued_in_the_background():
    now = [3_000_000.0]
    blocks = _StuckBackground()
    limiter = MongoRateLimiter({COLLECTION: blocks}, clock=lambda: now[0])
    with ThreadPoolExecutor(1) as pool:
        try:
            assert limiter.hit("send:first", 600, 60) is None
            assert blocks.waiting.wait(5)  # the background is stuck writing send:first's next block
            assert limiter.hit("send:second", 600, 60) is None  # send:second's next block waits behind it
            now[0] += 60
            answer, sender = pool.submit(lambda: (limiter.hit("send:second", 600, 60),
                                                  threading.current_thread().name)).result(timeout=5)
            assert answer is None  # answered while the background is still stuck: it leased for itself
            second = sorted(block for block in blocks.writers if block.startswith("send:second@"))
            assert [blocks.writers[block] for block in second] == [threading.current_thread().name, sender]
        finally:
            blocks.gate.set()


def waiting_in(function: str) -> int:
    """How many threads are, right now, in `function` itself (not in what it calls)."""
    return sum(1 for frame in sys._current_frames().values() if frame.f_code.co_name == function)


class _UnansweredBlocks:
    """A lease collection of a store that went away: each write fails once the test lets the first one end."""

    def __init__(self):
        self.attempts, self.answer = 0, threading.Event()

    def insert_one(self, document: dict) -> None:
        self.attempts += 1
        self.answer.wait(10)
        raise ServerSelectionTimeoutError("no servers found yet")

    def create_index(self, *args, **kwargs) -> None:
        pass


def test_sends_queued_behind_a_lease_the_store_did_not_answer_ask_it_no_more_and_are_left_to_local_counting():
    callers = 16
    blocks = _UnansweredBlocks()
    limiter = MongoRateLimiter({COLLECTION: blocks}, clock=lambda: 3_000_000.0)

    def send() -> str:
        try:
            limiter.hit("send:outage", 10**9, 60)
        except StoreUnavailable:
            return "counted locally"
        return "passed"

    with ThreadPoolExecutor(callers) as pool:
        sends = [pool.submit(send) for _ in range(callers)]
        # The first send writes the window's first block; the others wait for the lease it writes.
        wait_until(lambda: blocks.attempts == 1 and waiting_in("_spend") == callers - 1, timeout=10,
                   what="every other send waiting for the lease the first one asked the store for")
        blocks.answer.set()  # the store's answer: a timeout
        outcomes = [sent.result(timeout=30) for sent in sends]
    assert blocks.attempts == 1, f"{blocks.attempts} writes to a store that did not answer the first"
    assert outcomes == ["counted locally"] * callers
    assert send() == "counted locally" and blocks.attempts == 1, "a moment later: left to the caller, store not asked"
