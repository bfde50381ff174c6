"""HTTP/1.1 over raw sockets, for requests no HTTP client would send."""

import http.client
import json
import socket
from dataclasses import dataclass



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

