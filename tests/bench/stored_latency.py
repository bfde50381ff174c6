"""The end-to-end figure: how long after its POST a message is stored, at a fixed open-loop rate."""

import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlparse

from infra.process import wait_until
from shared_domain.documents import MESSAGES_COLLECTION, message_id_of
from tests.support.api import Api

from .cpu import CpuSince
from .progress import CommittedProgress
from .verdict import verdict


def run(api: Api, database, rate: float, seconds: float, progress: CommittedProgress,
        parts: dict[str, int]) -> tuple[float, float]:
    """Send `rate` messages a second for `seconds` on a fixed schedule; print and return stored p50/p99 in ms.

    `parts`: the process groups ({name: pid}) whose CPU use is printed with what bounded the run.
    Open loop: each message goes out at its scheduled time whatever the earlier ones are doing,
    so a slow answer cannot hide a queue. A message's latency runs from the wall-clock moment its
    POST began to the `storedAt` the consumer stamped as its insert began.
    """
    count = int(rate * seconds)
    began = time.time() + 0.5
    sent: list[tuple[float, float, str] | None] = [None] * count
    sender, token = KeepAliveSender(api.base_url), api.tokens["timer"]

    def send(n: int) -> None:
        time.sleep(max(0.0, began + n / rate - time.time()))
        at = time.time()
        status, body = sender.send(token, f"client{n % 7}", f"timed message {n}")
        if status != 202:
            raise RuntimeError(f"timed send {n} got {status}: {body}")
        sent[n] = (at, time.time() - at, body["messageId"])

    meter = CpuSince(parts)
    # Few threads on kept-alive connections: the client must not be what is measured.
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(send, range(count)))
    messages = database[MESSAGES_COLLECTION]
    end = progress.end()
    wait_until(lambda: progress.committed() >= end, timeout=120, interval=0.1, what=f"{count} timed messages committed")
    bound = meter.bounds()
    stored_at = {message_id_of(document): document["storedAt"].timestamp()
                 for document in messages.find({"from": "timer"}, {"messageId": 1, "storedAt": 1})}
    stored = sorted((stored_at[message_id] - at) * 1000 for at, _, message_id in sent)
    accepted = sorted(took * 1000 for _, took, _ in sent)
    p50, p99 = quantile(stored, 0.50), quantile(stored, 0.99)
    print(f"stored latency at {rate:.0f} msg/s: p50 {p50:.1f} ms  p99 {p99:.1f} ms  (202 after p50 "
          f"{quantile(accepted, 0.5):.1f} ms, p99 {quantile(accepted, 0.99):.1f} ms; {count} messages)"
          f"   target p99 < 50 ms: {verdict(p99 < 50)}")
    print(f"{'':24} {bound}")
    return p50, p99


class KeepAliveSender:
    """POSTs messages on one kept-alive connection per thread, as whichever client's token it is given.

    Plain sockets and a minimal HTTP/1.1 reading: http.client parses every answer's headers with
    the email package, and on two cores the load generator's CPU is taken from the servers measured.
    """

    def __init__(self, base_url: str):
        self._address = urlparse(base_url)
        self._local = threading.local()

    def send(self, token: str, recipient: str, text: str) -> tuple[int, dict]:
        """Send one message; return the status and the JSON answer.

        A connection the server closed while idle ends before any answer, without the server having
        read the request, so that one attempt is made again on a new connection.
        """
        body = json.dumps({"to": recipient, "message": text}).encode()
        request = (f"POST /send-message HTTP/1.1\r\nHost: {self._address.netloc}\r\n"
                   f"Content-Type: application/json\r\nAuthorization: Bearer {token}\r\n"
                   f"Content-Length: {len(body)}\r\n\r\n").encode() + body
        for attempt in (1, 2):
            connection = getattr(self._local, "connection", None)
            if connection is None:
                sock = socket.create_connection((self._address.hostname, self._address.port), timeout=30)
                connection = self._local.connection = (sock, sock.makefile("rb"))
            sock, answer = connection
            try:
                sock.sendall(request)
                status_line = answer.readline()
                if not status_line:
                    raise ConnectionResetError("closed before answering")
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection()
                if attempt == 2:
                    raise
                continue
            return self._answer(status_line, answer)
        raise AssertionError("unreachable")

    def close_connection(self) -> None:
        """Close this thread's connection."""
        sock, answer = self._local.connection
        answer.close()
        sock.close()
        self._local.connection = None

    def _answer(self, status_line: bytes, answer) -> tuple[int, dict]:
        """The status and JSON body of an answer whose status line was read."""
        length, closing = 0, False
        while (line := answer.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                closing = True
        body = answer.read(length)
        if closing:
            self.close_connection()
        return int(status_line.split()[1]), json.loads(body) if body else {}


def quantile(ordered: list[float], q: float) -> float:
    """The q-quantile of sorted values (nan when there are none)."""
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")
