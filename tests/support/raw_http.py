"""HTTP/1.1 over raw sockets: requests no HTTP client would send, and clients that send them slowly."""

import http.client
import json
import select
import socket
import threading
import time
from dataclasses import dataclass

# A request head that is never finished: a header whose value grows by one byte per send.
SLOW_HEAD = b"GET /health HTTP/1.1\r\nHost: slow\r\nX-Slow: "


@dataclass
class RawAnswer:
    """Status, headers and body of one answer."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        """The value of a header, by case-insensitive name."""
        return next((value for key, value in self.headers if key.lower() == name.lower()), None)

    def json(self):
        """The body decoded as JSON."""
        return json.loads(self.body)


def read_answer(sock: socket.socket, method: str = "GET") -> RawAnswer | None:
    """The answer waiting on a socket, or None when the server closed or reset it without one."""
    response = http.client.HTTPResponse(sock, method=method)
    try:
        response.begin()
        return RawAnswer(response.status, response.getheaders(), response.read())
    except (http.client.RemoteDisconnected, ConnectionResetError):
        return None
    finally:
        response.close()


def exchange(port: int, data: bytes, timeout: float, method: str = "GET") -> RawAnswer | None:
    """Send raw bytes on a new connection and read the one answer (None: closed without one)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before reading all of it
        return read_answer(sock, method)


class Slowloris:
    """`count` connections that each send one more byte of an endless request head every `interval` s.

    Each answer is recorded with the seconds its connection was open; with `reconnect`, an answered
    connection is replaced by a new one, so `count` stay open, as an attacker would keep them.
    """

    def __init__(self, port: int, count: int, interval: float = 1.0, reconnect: bool = False):
        self.port, self.count, self.interval, self.reconnect = port, count, interval, reconnect
        self.opened: dict[socket.socket, float] = {}
        self.answers: list[tuple[RawAnswer | None, float]] = []
        self.rounds = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._trickle, name="slowloris", daemon=True)

    def __enter__(self) -> "Slowloris":
        for _ in range(self.count):
            self._open()
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()
        for sock in list(self.opened):
            sock.close()

    def unanswered(self) -> int:
        """How many of the open connections have nothing from the server to read yet."""
        readable, _, _ = select.select(list(self.opened), [], [], 0)
        return len(self.opened) - len(readable)

    def _open(self) -> None:
        """Open one connection and send the start of its head."""
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        sock.sendall(SLOW_HEAD)
        self.opened[sock] = time.monotonic()

    def _trickle(self) -> None:
        """Each round, record the answers that came and send one more byte on the other connections."""
        while not self._stop.wait(self.interval):
            readable, _, _ = select.select(list(self.opened), [], [], 0)
            for sock in readable:
                self.answers.append((read_answer(sock), time.monotonic() - self.opened.pop(sock)))
                sock.close()
                if self.reconnect:
                    self._open()
            for sock in self.opened:
                try:
                    sock.send(b"x")
                except OSError:
                    pass  # closed by the server since the select: its answer is read next round
            self.rounds += 1
