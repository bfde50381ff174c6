"""A Server-Sent Events client for tests: one stream on one connection, events read with a deadline and checked
against the producer's OpenAPI document."""

import contextlib
import http.client
import json
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlencode, urlparse

from .contract import conform_event


@dataclass(frozen=True)
class Event:
    """One dispatched event: its type, id and JSON data."""

    kind: str
    id: str | None
    data: object


class SseStream:
    """GET /stream with a token or a session cookie (and a resume position); `status` and `headers` once it answered."""

    def __init__(self, base_url: str, token: str | None, last_event_id: str | None = None, cookie: str | None = None,
                 **params):
        address = urlparse(base_url)
        self._base_url = base_url
        self._connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
        headers = {"Accept": "text/event-stream"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        if cookie:
            headers["Cookie"] = cookie
        self._connection.request("GET", "/stream" + (f"?{urlencode(params)}" if params else ""), headers=headers)
        self._response = self._connection.getresponse()
        self.status, self.headers = self._response.status, dict(self._response.headers)
        self.last_id: str | None = None
        self.ended = False
        self._kind, self._id, self._data = "message", None, []  # the event being read, kept across timeouts

    def error_body(self) -> dict:
        """The JSON error of a stream that was refused."""
        return json.loads(self._response.read())

    def next_event(self, timeout: float = 20.0) -> Event | None:
        """The next event (comments skipped), or None once the server ended the stream; TimeoutError past `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no event within {timeout}s")
            self._connection.sock.settimeout(remaining)
            try:
                line = self._response.readline()
            except (socket.timeout, TimeoutError):
                raise TimeoutError(f"no event within {timeout}s") from None
            if not line:
                self.ended = True
                return None
            line = line.decode().rstrip("\r\n")
            if line == "":
                kind, event_id, data = self._kind, self._id, self._data
                self._kind, self._id, self._data = "message", None, []
                if data or event_id is not None:
                    if event_id is not None:
                        self.last_id = event_id
                    event = Event(kind, event_id, json.loads("\n".join(data)) if data else None)
                    conform_event(self._base_url, event.kind, event.id, event.data)
                    return event
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "event":
                self._kind = value
            elif name == "id":
                self._id = value
            elif name == "data":
                self._data.append(value)

    def messages_until(self, message_id: str, timeout: float = 20.0) -> list[dict]:
        """The chat messages received until (and including) the one with `message_id`."""
        received, deadline = [], time.monotonic() + timeout
        while not any(message["messageId"] == message_id for message in received):
            event = self.next_event(max(0.01, deadline - time.monotonic()))
            if event is None:
                raise AssertionError(f"the stream ended before {message_id}")
            if event.kind == "chat-message":
                received.append(event.data)
        return received

    def close(self) -> None:
        """Hang up; a read waiting on another thread returns at once, as if the server had ended the stream."""
        if self._connection.sock is not None:
            with contextlib.suppress(OSError):
                self._connection.sock.shutdown(socket.SHUT_RDWR)
        self._connection.close()
