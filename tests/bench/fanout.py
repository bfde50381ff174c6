"""The live fan-out figure: N open streams while messages flow, from each POST to the event at each subscriber."""

import asyncio
import json
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlparse

from tests.support.stack import register

from .cpu import group_rss_bytes
from .stored_latency import KeepAliveSender


def run(api, mongo_uri: str, database: str, producer_pid: int, subscribers: int, rate: float, seconds: float) -> None:
    """Open `subscribers` streams (two per client), send at `rate` for `seconds`, print latency, losses and memory."""
    clients = [f"fan{n}" for n in range(max(1, subscribers // 2))]
    tokens = register(mongo_uri, database, clients, operator=False)
    # Each worker notices new clients at its next registry check; until then their tokens are unknown
    # (and failed authentications from one address are rate-limited), so wait for a run of successes.
    _wait_known(api, tokens[clients[-1]])
    address = urlparse(api.base_url)
    streams = [(clients[n % len(clients)], tokens[clients[n % len(clients)]]) for n in range(subscribers)]
    rss_before = group_rss_bytes(producer_pid)
    fan = _FanOut(address.hostname, address.port, streams)
    loop_thread = threading.Thread(target=asyncio.run, args=(fan.run(),), daemon=True)
    opening = time.monotonic()
    loop_thread.start()
    while not fan.all_open.wait(1.0):
        if fan.refused or time.monotonic() - opening > 600:
            fan.stop()
            raise RuntimeError(f"{fan.opened} of {subscribers} streams opened; refused: {fan.refused[:3]}")
    opened_in = time.monotonic() - opening
    time.sleep(1.0)
    per_idle_kib = (group_rss_bytes(producer_pid) - rss_before) / subscribers / 1024
    sent = _send(api.base_url, tokens, clients, rate, seconds)
    expected = {(message_id, stream) for message_id, (sender, recipient, _) in sent.items()
                for stream, (client, _) in enumerate(streams) if client in (sender, recipient)}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not expected <= fan.arrivals.keys():
        time.sleep(0.2)
    fan.stop()
    lost = len(expected - fan.arrivals.keys())
    latencies = sorted((fan.arrivals[key] - sent[key[0]][2]) * 1000 for key in expected if key in fan.arrivals)
    quantile = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else float("nan")
    print(f"live fan-out:         {subscribers} subscribers ({len(clients)} clients x 2) at {rate:.0f} msg/s for "
          f"{seconds:.0f} s: {len(expected)} events, delivery p50 {quantile(0.5):.1f} ms p99 {quantile(0.99):.1f} ms, "
          f"lost {lost}; server memory {per_idle_kib:.0f} KiB per idle subscriber; all open after {opened_in:.0f} s "
          f"({fan.retried} opens answered 503 and retried)   target p99 < 250 ms, 0 lost: "
          f"{'met' if quantile(0.99) < 250 and lost == 0 else 'MISSED'}")


def _wait_known(api, token: str) -> None:
    """Wait until 20 requests in a row with a newly registered token are authenticated (every worker knows it)."""
    successes, deadline = 0, time.monotonic() + 30
    while successes < 20:
        if time.monotonic() > deadline:
            raise RuntimeError("the new clients' tokens were not accepted within 30 s")
        successes = successes + 1 if api.get("/messages", {"Authorization": f"Bearer {token}"}, limit=1).status == 200 else 0
        time.sleep(0.1 if successes == 0 else 0)


def _send(base_url: str, tokens: dict, clients: list[str], rate: float, seconds: float) -> dict:
    """Send between random clients on a fixed schedule; {messageId: (from, to, wall time the POST began)}."""
    rng, count, began = random.Random(11), int(rate * seconds), time.time() + 0.2
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
        kind = None
        try:
            while True:
                line = (await reader.readline()).rstrip(b"\r\n")
                if line.startswith(b"event: "):
                    kind = line[7:]
                elif line.startswith(b"data: ") and kind == b"chat-message":
                    self.arrivals[(json.loads(line[6:])["messageId"], index)] = time.time()
                elif not line:
                    kind = None
        finally:
            writer.close()

