"""A tiny HTTP client for the producer API, on the standard library."""

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlencode


@dataclass
class Reply:
    """Status, headers and decoded JSON body of one response."""

    status: int
    headers: dict
    body: object


class Api:
    """Talks to one producer service."""

    def __init__(self, base_url: str):
        self.base_url = base_url.rstrip("/")

    def send(self, sender: str, recipient: str, text: str, **extra) -> Reply:
        """POST /send-message."""
        return self.post("/send-message", {"from": sender, "to": recipient, "message": text, **extra})

    def post(self, path: str, body, content_type: str = "application/json", headers: dict | None = None) -> Reply:
        """POST a body (JSON-encoded unless already bytes)."""
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = {"Content-Type": content_type, **(headers or {})}
        return self._call(urllib.request.Request(self.base_url + path, data=data, headers=headers))

    def get(self, path: str, headers: dict | None = None, **params) -> Reply:
        """GET a path with query parameters."""
        query = f"?{urlencode(params)}" if params else ""
        return self._call(urllib.request.Request(self.base_url + path + query, headers=headers or {}))

    def _call(self, request) -> Reply:
        """Send a request and decode the JSON answer, whatever its status."""
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return Reply(response.status, dict(response.headers), json.loads(response.read() or b"null"))
        except urllib.error.HTTPError as error:
            return Reply(error.code, dict(error.headers), json.loads(error.read() or b"null"))
