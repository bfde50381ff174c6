"""Live delivery under churn: subscribers come and go while messages flow and the consumer and an API worker die.

Every subscriber must end with every message its client sent or received, exactly once, in
order per direction of each conversation, and nothing of anyone else's.
"""

import http.client
import os
import random
import signal
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from infra.process import wait_until
from tests.support.ledgers import LEDGERS
from tests.support.sse import SseStream

CLIENTS = ["clientM", "clientN", "clientO", "clientP", "clientQ", "clientR"]
STREAMS_PER_CLIENT = 2
MESSAGES = 600
RATE = 100  # messages a second
RECONNECT_CHANCE = 0.04  # after each event a subscriber may hang up and resume


@pytest.fixture(scope="module")
def stack(stack_factory):
    """Producer plus a consumer for all clients."""
    return stack_factory(clients=("*",), STREAM_HEARTBEAT_S=1, STREAM_LIMIT_PER_CLIENT=10)


class Subscriber(threading.Thread):
    """One client's stream, kept open by resuming after every hang-up, on purpose or not."""

    def __init__(self, stack, client: str, seed: int):
        super().__init__(daemon=True)
        self.stack, self.client, self.random = stack, client, random.Random(seed)
        self.received: list[dict] = []
        self.reconnects, self.position = 0, None
        self.stop, self.ready = threading.Event(), threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                stream = SseStream(self.stack.api.base_url, self.stack.api.tokens[self.client], self.position)
            except (OSError, http.client.HTTPException):
                time.sleep(0.1)  # the worker it reached was killed; try again
                continue
            if stream.status != 200:
                stream.close()
                time.sleep(0.2)
                continue
            try:
                self._read(stream)
            except (OSError, http.client.HTTPException):
                pass
            finally:
                stream.close()
            self.reconnects += 1

    def _read(self, stream: SseStream) -> None:
        """Read events until the stream ends, breaks or this subscriber chooses to hang up."""
        while not self.stop.is_set():
            try:
                event = stream.next_event(timeout=1.0)
            except TimeoutError:
                continue
            if event is None:
                return
            if event.kind == "chat-message":
                self.received.append(event.data)
            self.position = stream.last_id or self.position
            self.ready.set()
            if event.kind == "chat-message" and self.random.random() < RECONNECT_CHANCE:
                return


def send_all(stack, pairs: list[tuple[str, str]], accepted: list, stop: threading.Event) -> None:
    """Send each message at RATE, retrying with the same messageId until it is accepted."""
    began = time.monotonic()
    for number, (sender, recipient) in enumerate(pairs):
        time.sleep(max(0.0, began + number / RATE - time.monotonic()))
        message_id = f"live-{number}-{uuid.uuid4().hex[:8]}"
        while not stop.is_set():
            try:
                reply = stack.api.send(sender, recipient, f"live {number}", messageId=message_id)
            except OSError:
                continue
            if reply.status == 202:
                accepted.append((sender, recipient, message_id, reply.body["partition"], reply.body["offset"]))
                break
            time.sleep(0.05)


def worker_pids(master: int) -> list[int]:
    """The gunicorn workers of a master process."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        if int(text[text.rindex(")") + 2:].split()[1]) == master:
            children.append(int(stat.parent.name))
    return children


def test_every_subscriber_gets_every_message_of_its_client_once_in_order_through_churn_and_restarts(stack):
    rng = random.Random(7)
    subscribers = [Subscriber(stack, client, seed=n * 10 + k) for n, client in enumerate(CLIENTS)
                   for k in range(STREAMS_PER_CLIENT)]
    for subscriber in subscribers:
        subscriber.start()
    for subscriber in subscribers:
        assert subscriber.ready.wait(30), f"{subscriber.client}'s stream did not open"
    pairs = [tuple(rng.sample(CLIENTS, 2)) for _ in range(MESSAGES)]
    accepted, stop = [], threading.Event()
    sender = threading.Thread(target=send_all, args=(stack, pairs, accepted, stop), daemon=True)
    sender.start()
    consumer, producer = stack.processes[0], stack.producer
    try:
        wait_until(lambda: len(accepted) >= MESSAGES // 3, timeout=60, what="a third of the messages")
        consumer.kill()
        consumer.start()
        wait_until(lambda: len(accepted) >= 2 * MESSAGES // 3, timeout=60, what="two thirds of the messages")
        os.kill(worker_pids(producer.pid)[0], signal.SIGKILL)
        sender.join(120)
        assert not sender.is_alive(), "every message was accepted"

        expected = {client: {m[2] for m in accepted if client in m[:2]} for client in CLIENTS}
        wait_until(lambda: all(expected[s.client] <= {m["messageId"] for m in s.received} for s in subscribers),
                   timeout=120, interval=0.5, what="every subscriber to have every message of its client")
    finally:
        stop.set()
        for subscriber in subscribers:
            subscriber.stop.set()

    lost = duplicated = foreign = out_of_order = 0
    first_try_offsets = {m[2]: (m[3], m[4]) for m in accepted}
    for subscriber in subscribers:
        counts = Counter(m["messageId"] for m in subscriber.received)
        lost += len(expected[subscriber.client] - set(counts))
        duplicated += sum(count - 1 for count in counts.values())
        foreign += sum(1 for m in subscriber.received if subscriber.client not in (m["from"], m["to"]))
        for sender_id in CLIENTS:
            for recipient in CLIENTS:
                ids = [m["messageId"] for m in subscriber.received if (m["from"], m["to"]) == (sender_id, recipient)]
                out_of_order += ids != sorted(ids, key=lambda message_id: first_try_offsets[message_id][1])
    delivered = sum(len(s.received) for s in subscribers)
    reconnects = sum(s.reconnects for s in subscribers)
    LEDGERS.append(f"ledger[live delivery]: subscribers={len(subscribers)}, delivered={delivered}, lost={lost}, "
                   f"duplicated={duplicated}, foreign={foreign}, out of order={out_of_order} | messages={len(accepted)}, "
                   f"reconnects={reconnects}, consumer SIGKILL and restart=1, API worker SIGKILL=1")
    assert (lost, duplicated, foreign, out_of_order) == (0, 0, 0, 0)
