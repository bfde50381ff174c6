"""The soak's load: single sends at a fixed open-loop rate, and live streams that note every event they receive."""

from __future__ import annotations

import http.client
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from tests.bench.stored_latency import KeepAliveSender
from tests.support.sse import SseStream

SENDER_THREADS = 8
LATE_S = 30.0  # a message not on every stream it belongs to this long after its send counts as missing
QUIET_S = 60.0  # a stream without even a heartbeat for this long is opened again


@dataclass(frozen=True)
class Sent:
    """An accepted message: when its POST began, who sent it, and to whom."""

    began: float
    sender: str
    recipient: str


@dataclass
class Ledger:
    """What was sent and what each stream received, shared by the sending and reading threads.

    A message's stored latency runs from the moment its POST began to the moment its event first
    reached one of its recipient's streams: stored, announced and delivered, so an upper bound.
    """

    streams_of: dict[str, int]  # client -> bit mask of its streams
    lock: threading.Lock = field(default_factory=threading.Lock)
    sent: dict[str, Sent] = field(default_factory=dict)
    statuses: Counter = field(default_factory=Counter)  # answers to sends: 202, 429, 503 ... or "no answer"
    received: dict[str, int] = field(default_factory=dict)  # messageId -> streams it reached
    first: dict[str, float] = field(default_factory=dict)  # messageId -> first arrival at a recipient's stream
    events: int = 0
    _arrivals: list[str] = field(default_factory=list)  # first arrivals not yet taken
    _incomplete: set[str] = field(default_factory=set)

    def accepted(self, message_id: str, sent: Sent) -> None:
        """Note a send answered 202."""
        with self.lock:
            self.sent[message_id] = sent
            self.statuses[202] += 1
            self._incomplete.add(message_id)

    def refused(self, status: int | str) -> None:
        """Note a send answered otherwise, or not at all."""
        with self.lock:
            self.statuses[status] += 1

    def arrived(self, stream_bit: int, client: str, message: dict, at: float) -> None:
        """Note a chat-message event on one stream of `client`."""
        message_id = message["messageId"]
        with self.lock:
            self.events += 1
            self.received[message_id] = self.received.get(message_id, 0) | stream_bit
            if message["to"] == client and message_id not in self.first:
                self.first[message_id] = at
                self._arrivals.append(message_id)

    def take_latencies(self) -> list[float]:
        """Stored latencies in ms of the messages that first arrived since the last call (sorted)."""
        with self.lock:
            arrivals, self._arrivals = self._arrivals, []
            known = [message_id for message_id in arrivals if message_id in self.sent]
            # Its event can beat the 202 to this process: it is counted once the sender noted it.
            self._arrivals = [message_id for message_id in arrivals if message_id not in self.sent]
            return sorted((self.first[message_id] - self.sent[message_id].began) * 1000 for message_id in known)

    def missing(self, older_than: float) -> int:
        """Accepted messages sent before `older_than` that have not reached every stream they belong on."""
        with self.lock:
            self._incomplete = {message_id for message_id in self._incomplete if not self._complete(message_id)}
            return sum(1 for message_id in self._incomplete if self.sent[message_id].began < older_than)

    def expected(self, message_id: str) -> int:
        """The streams a message belongs on: its sender's and its recipient's."""
        sent = self.sent[message_id]
        return self.streams_of.get(sent.sender, 0) | self.streams_of.get(sent.recipient, 0)

    def _complete(self, message_id: str) -> bool:
        """Whether a message reached every stream it belongs on."""
        expected = self.expected(message_id)
        return self.received.get(message_id, 0) & expected == expected


class Senders:
    """SENDER_THREADS threads sending message n at `began + n / rate`, each from clients[n] to the next client."""

    def __init__(self, base_url: str, tokens: dict[str, str], clients: list[str], rate: float, ledger: Ledger):
        self._sender = KeepAliveSender(base_url)
        self._tokens, self._clients, self._rate, self._ledger = tokens, clients, rate, ledger
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._send_every, args=(k,), daemon=True, name=f"sender-{k}")
                         for k in range(SENDER_THREADS)]
        self.began = 0.0

    def start(self) -> None:
        """Start sending half a second from now."""
        self.began = time.time() + 0.5
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stop sending and wait for the sends in flight."""
        self._stop.set()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(60)

    def _send_every(self, first: int) -> None:
        """Send messages first, first + SENDER_THREADS, ... each at its time (at once when late)."""
        for n in range(first, 2**62, SENDER_THREADS):
            if self._stop.wait(max(0.0, self.began + n / self._rate - time.time())):
                return
            sender = self._clients[n % len(self._clients)]
            recipient = self._clients[(n + 1) % len(self._clients)]
            began = time.time()
            try:
                status, body = self._sender.send(self._tokens[sender], recipient, f"soak message {n}")
            except (OSError, ValueError):
                self._ledger.refused("no answer")
                continue
            if status == 202:
                self._ledger.accepted(body["messageId"], Sent(began, sender, recipient))
            else:
                self._ledger.refused(status)


class StreamReader:
    """One live stream of a client, read on a thread of its own; it resumes from its last event when cut."""

    def __init__(self, base_url: str, client: str, token: str, number: int, ledger: Ledger):
        self.client, self.bit = client, 1 << number
        self._base_url, self._token, self._ledger = base_url, token, ledger
        self._stop = threading.Event()
        self.opened = threading.Event()
        self.reconnects = 0
        self.refusals: Counter = Counter()  # statuses of opens that were not 200
        self._thread = threading.Thread(target=self._read, daemon=True, name=f"stream-{number}")

    def start(self) -> None:
        """Open the stream and read it until stopped."""
        self._thread.start()

    def stop(self) -> None:
        """Hang up at the next event or heartbeat (the thread is a daemon: nothing waits for it)."""
        self._stop.set()

    def _read(self) -> None:
        """Open, read, and open again from the last event until stopped."""
        last_id = None
        while not self._stop.is_set():
            try:
                stream = SseStream(self._base_url, self._token, last_id)
            except (OSError, http.client.HTTPException):
                self.refusals["no answer"] += 1
                self._stop.wait(1.0)
                continue
            if stream.status != 200:
                self.refusals[stream.status] += 1
                stream.close()
                self._stop.wait(1.0)
                continue
            self.opened.set()
            try:
                self._events(stream)
            except (OSError, http.client.HTTPException, ValueError):  # TimeoutError included: a dead stream
                pass
            finally:
                last_id = stream.last_id or last_id
                stream.close()
            if not self._stop.is_set():
                self.reconnects += 1

    def _events(self, stream: SseStream) -> None:
        """Note each chat message until the stream ends, falls too far behind, goes quiet, or the reader is stopped.

        Heartbeats come every STREAM_HEARTBEAT_S (15 s), so a stream quiet for QUIET_S is dead. A read is never
        cut short otherwise: a timeout between two chunks leaves http.client's chunk reading out of step.
        """
        while not self._stop.is_set():
            event = stream.next_event(QUIET_S)
            if event is None or event.kind == "overflow":
                return
            if event.kind == "chat-message":
                self._ledger.arrived(self.bit, self.client, event.data, time.time())
