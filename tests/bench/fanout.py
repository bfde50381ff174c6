"""The live fan-out figure: N open streams while messages flow, from each POST to the event at each subscriber."""

import asyncio
import multiprocessing
import os
import random
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlparse

from pymongo import MongoClient

from shared_domain.documents import MESSAGES_COLLECTION, message_id_of
from shared_domain.message import message_key
from tests.support.stack import register

from .cpu import CpuSince, group_rss_bytes
from .stored_latency import KeepAliveSender, quantile
from .verdict import verdict

# What a subscriber waits for an event at the default thread count, from the POST to its arrival.
TARGET_P99_MS = 150


def run(api, mongo_uri: str, database: str, parts: dict[str, int], subscribers: int, rate: float,
        seconds: float, warmup_s: float) -> None:
    """Open `subscribers` streams (two per client), send at `rate` for `seconds`, print latency, losses and memory.

    The figure is the steady state: the same sending for `warmup_s` before it is printed apart
    (each client's first sends lease its rate-limit block in each worker). `parts` names the
    process (group) of each part, the producer's first; each one's CPU while the messages flow
    is printed too, since on two cores every part's cost becomes everyone's delay.
    """
    producer_pid = parts["producer"]
    clients = [f"fan{n}" for n in range(max(1, subscribers // 2))]
    tokens = register(mongo_uri, database, clients, operator=False)
    # Each worker notices new clients at its next registry check; until then their tokens are unknown
    # (and failed authentications from one address are rate-limited), so wait for a run of successes.
    _wait_known(api, tokens[clients[-1]])
    address = urlparse(api.base_url)
    streams = [(clients[n % len(clients)], tokens[clients[n % len(clients)]]) for n in range(subscribers)]
    rss_before = group_rss_bytes(producer_pid)
    subscribers_process = _Subscribers(address.hostname, address.port, streams)
    opening = time.monotonic()
    opened_in = subscribers_process.wait_open(timeout=600) - opening
    time.sleep(1.0)
    per_idle_kib = (group_rss_bytes(producer_pid) - rss_before) / subscribers / 1024
    warm_up = _send(api.base_url, tokens, clients, rate, warmup_s, seed=7) if warmup_s > 0 else {}
    groups = parts | {"bench": os.getpid()}
    meter = CpuSince(groups)
    sent = _send(api.base_url, tokens, clients, rate, seconds, seed=11)
    while_sending = meter.bounds()
    expected, warm_up_expected = _expected(sent, streams), _expected(warm_up, streams)
    arrivals, retried = subscribers_process.arrivals(expected | warm_up_expected, timeout=30)
    lost = len((expected | warm_up_expected) - arrivals.keys())
    latencies = _latencies(sent, expected, arrivals)
    warm_up_latencies = _latencies(warm_up, warm_up_expected, arrivals)
    stamps = _stamps(mongo_uri, database, sent)
    stored_at = {message_id: stored for message_id, (_, stored) in stamps.items()}
    to_accept = sorted((stamps[message_id][0] - at) * 1000 for message_id, (_, _, at) in sent.items()
                       if message_id in stamps)
    to_store = sorted((stored - accepted) * 1000 for accepted, stored in stamps.values())
    to_event = sorted((arrivals[key] - stored_at[key[0]]) * 1000 for key in expected
                      if key in arrivals and key[0] in stored_at)
    p50, p99 = quantile(latencies, 0.5), quantile(latencies, 0.99)
    print(f"live fan-out:         {subscribers} subscribers ({len(clients)} clients x 2) at {rate:.0f} msg/s for "
          f"{seconds:.0f} s after {warmup_s:.0f} s of warm-up: {len(expected)} events, delivery p50 {p50:.1f} ms "
          f"p99 {p99:.1f} ms, "
          f"lost {lost}; server memory {per_idle_kib:.0f} KiB per idle subscriber; all open after {opened_in:.0f} s "
          f"({retried} opens answered 503 and retried)   target p99 < {TARGET_P99_MS} ms, 0 lost: "
          f"{verdict(p99 < TARGET_P99_MS and lost == 0)}")
    print(f"  the warm-up's own figure (every client's first sends): {len(warm_up_expected)} events, "
          f"p50 {quantile(warm_up_latencies, 0.5):.1f} ms p99 {quantile(warm_up_latencies, 0.99):.1f} ms")
    print("  where the time goes (p50 / p99 ms): " + "; ".join(
        f"{what} {quantile(values, 0.5):.1f} / {quantile(values, 0.99):.1f}" for what, values in (
            ("POST to sentAt", to_accept), ("sentAt to the consumer's insert", to_store),
            ("insert to the event at the subscriber", to_event))))
    print(f"  while sending: {while_sending}")


def _expected(sent: dict, streams: list[tuple[str, str]]) -> set[tuple[str, int]]:
    """Every (messageId, stream) that is to arrive: each message on every stream of its sender and its recipient."""
    return {(message_id, stream) for message_id, (sender, recipient, _) in sent.items()
            for stream, (client, _) in enumerate(streams) if client in (sender, recipient)}


def _latencies(sent: dict, expected: set, arrivals: dict) -> list[float]:
    """Sorted milliseconds from each POST to its event at each stream, of the events that arrived."""
    return sorted((arrivals[key] - sent[key[0]][2]) * 1000 for key in expected if key in arrivals)


def _stamps(mongo_uri: str, database: str, sent: dict) -> dict[str, tuple[float, float]]:
    """Each sent message's `sentAt` (the producer accepted it) and `storedAt` (the consumer began its insert), by id."""
    keys = [message_key(sender, message_id) for message_id, (sender, _, _) in sent.items()]
    with MongoClient(mongo_uri, tz_aware=True) as client:
        messages = client[database][MESSAGES_COLLECTION]
        return {message_id_of(document): (document["sentAt"].timestamp(), document["storedAt"].timestamp())
                for document in messages.find({"_id": {"$in": keys}}, {"messageId": 1, "sentAt": 1, "storedAt": 1})}


def _wait_known(api, token: str) -> None:
    """Wait until 20 requests in a row with a newly registered token are authenticated (every worker knows it)."""
    successes, deadline = 0, time.monotonic() + 30
    while successes < 20:
        if time.monotonic() > deadline:
            raise RuntimeError("the new clients' tokens were not accepted within 30 s")
        successes = successes + 1 if api.get("/messages", {"Authorization": f"Bearer {token}"}, limit=1).status == 200 else 0
        time.sleep(0.1 if successes == 0 else 0)


def _send(base_url: str, tokens: dict, clients: list[str], rate: float, seconds: float, seed: int) -> dict:
    """Send between random clients on a fixed schedule; {messageId: (from, to, wall time the POST began)}."""
    rng, count, began = random.Random(seed), int(rate * seconds), time.time() + 0.2
    pairs = [tuple(rng.sample(clients, 2)) for _ in range(count)]
    poster = KeepAliveSender(base_url)
    sent = {}

    def send(n: int) -> None:
        sender, recipient = pairs[n]
        time.sleep(max(0.0, began + n / rate - time.time()))
        at = time.time()
        status, body = poster.send(tokens[sender], recipient, f"fan-out {n}")
        if status != 202:
            raise RuntimeError(f"fan-out send {n} got {status}: {body}")
        sent[body["messageId"]] = (sender, recipient, at)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(send, range(count)))
    return sent


class _Subscribers:
    """The streams, held by a process of their own (subscribers are other clients than the senders)."""

    def __init__(self, host: str, port: int, streams: list[tuple[str, str]]):
        context = multiprocessing.get_context("spawn")  # this process has threads: no fork
        self._commands, child_end = context.Pipe()
        self._process = context.Process(target=_hold_streams, args=(host, port, streams, child_end), daemon=True)
        self._process.start()

    def wait_open(self, timeout: float) -> float:
        """Wait until every stream is open; return when that was (time.monotonic()), or raise."""
        if not self._commands.poll(timeout):
            self._process.kill()
            raise RuntimeError(f"the streams did not all open within {timeout:.0f} s")
        opened, refused = self._commands.recv()
        if refused:
            self._process.kill()
            raise RuntimeError(f"{opened} of the streams opened; refused: {refused}")
        return time.monotonic()

    def arrivals(self, expected: set, timeout: float) -> tuple[dict[tuple[str, int], float], int]:
        """Wait up to `timeout` for the expected (messageId, stream) events; the arrival times and the retried opens."""
        self._commands.send((expected, timeout))
        arrivals, retried = self._commands.recv()
        self._process.join(10)
        return arrivals, retried


def _hold_streams(host: str, port: int, streams: list[tuple[str, str]], commands) -> None:
    """In the subscribers' process: open every stream, say so, then note arrivals until told what to expect."""
    fan = _FanOut(host, port, streams)
    loop = threading.Thread(target=asyncio.run, args=(fan.run(),), daemon=True)
    loop.start()
    while not fan.all_open.wait(0.5) and not fan.refused:
        pass
    commands.send((fan.opened, fan.refused[:3]))
    if fan.refused:
        return
    expected, timeout = commands.recv()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not expected <= fan.arrivals.keys():
        time.sleep(0.2)
    fan.stop()
    loop.join(10)
    commands.send((fan.arrivals, fan.retried))


# An SSE chat-message event's data holds the message as JSON, its id first.
_CHAT_MESSAGE_ID = re.compile(rb'event: chat-message\ndata: \{"messageId": "([^"]+)"')


class _FanOut:
    """Many SSE connections on one asyncio loop, noting when each chat message reaches each stream."""

    def __init__(self, host: str, port: int, streams: list[tuple[str, str]]):
        self.host, self.port, self.streams = host, port, streams
        self.arrivals: dict[tuple[str, int], float] = {}
        self.opened, self.all_open, self.refused, self.retried = 0, threading.Event(), [], 0
        self._stopping: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def run(self) -> None:
        self._loop, self._stopping = asyncio.get_running_loop(), asyncio.Event()
        # Opened a few at a time: each open reads where the client stands from the store, which
        # FerretDB answers with a scan of the messages.
        self._opening = asyncio.Semaphore(16)
        tasks = [asyncio.create_task(self._read(index, token)) for index, (_, token) in enumerate(self.streams)]
        await self._stopping.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)

    async def _read(self, index: int, token: str) -> None:
        while True:
            async with self._opening:
                reader, writer = await asyncio.open_connection(self.host, self.port, limit=1 << 20)
                writer.write(f"GET /stream HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
                await writer.drain()
                head = await reader.readuntil(b"\r\n\r\n")
            if head.startswith(b"HTTP/1.1 200"):
                break
            writer.close()
            if not head.startswith(b"HTTP/1.1 503"):
                self.refused.append(head.split(b"\r\n")[0])
                return
            # The store took too long to say where the client stands: try again, as a browser would.
            self.retried += 1
            await asyncio.sleep(1.0)
        self.opened += 1
        if self.opened == len(self.streams):
            self.all_open.set()
        pending = b""
        try:
            while True:
                # Whole reads, one pattern search each: a lighter client leaves the two cores to the server.
                chunk = await reader.read(1 << 16)
                if not chunk:
                    return
                pending += chunk
                complete = pending.rfind(b"\n\n") + 2  # 1 when no event is whole yet
                if complete == 1:
                    continue
                arrived = time.time()
                for message_id in _CHAT_MESSAGE_ID.findall(pending, 0, complete):
                    self.arrivals[(message_id.decode(), index)] = arrived
                pending = pending[complete:]
        finally:
            writer.close()

