"""A tiny HTTP client for the producer API, on the standard library."""

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from .contract import conform


@dataclass
class Reply:
    """Status, headers and decoded JSON body of one response."""

    status: int
    headers: dict
    body: object


OPERATOR = "ops"  # the operator test stacks register
OPERATOR_PATHS = ("/failed-messages", "/failed-message-counts", "/clients", "/metrics")


class Api:
    """Talks to one producer service, each request signed by the party that may make it.

    With `tokens` ({client or "operator": token}), a request without explicit headers carries the
    token of the sender it names (sends), of the client whose messages it reads (`to`, `from` or
    `with`), or the operator's (failed messages, clients). Explicit headers, `{}` included, win.
    """

    def __init__(self, base_url: str, tokens: dict[str, str] | None = None, contract: bool = True):
        self.base_url = base_url.rstrip("/")
        self.tokens = dict(tokens or {})
        self.contract = contract  # check every answer against the OpenAPI document the server serves

    def send(self, sender: str, recipient: str, text: str, **extra) -> Reply:
        """POST /send-message as `sender`."""
        return self.post("/send-message", {"from": sender, "to": recipient, "message": text, **extra})

    def post(self, path: str, body, content_type: str = "application/json", headers: dict | None = None) -> Reply:
        """POST a body (JSON-encoded unless already bytes)."""
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        signed = self._signed(path, headers, _sender_of(body))
        return self._call(urllib.request.Request(self.base_url + path, data=data,
                                                 headers={"Content-Type": content_type, **signed}))

    def get(self, path: str, headers: dict | None = None, **params) -> Reply:
        """GET a path with query parameters."""
        query = f"?{urlencode(params)}" if params else ""
        reader = params.get("to") or params.get("from") or params.get("with")
        return self._call(urllib.request.Request(self.base_url + path + query, headers=self._signed(path, headers, reader)))

    def as_(self, name: str | None) -> dict:
        """The Authorization header of `name`'s token ({} for nobody)."""
        return {"Authorization": f"Bearer {self.tokens[name]}"} if name else {}

    def _signed(self, path: str, headers: dict | None, party: str | None) -> dict:
        """The headers to send: the explicit ones, else the token of whoever may make this request."""
        if headers is not None:
            return headers
        name = OPERATOR if path.startswith(OPERATOR_PATHS) else party
        return self.as_(name) if name in self.tokens else {}

    def _call(self, request) -> Reply:
        """Send a request and decode the JSON answer, whatever its status; check it against the API's document."""
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                reply = Reply(response.status, dict(response.headers), json.loads(response.read() or b"null"))
        except urllib.error.HTTPError as error:
            reply = Reply(error.code, dict(error.headers), json.loads(error.read() or b"null"))
        if self.contract:
            conform(self.base_url, request.get_method(), urlsplit(request.full_url).path, reply.status,
                    reply.headers.get("Content-Type"), reply.body)
        return reply


def _sender_of(body) -> str | None:
    """The sender a send body names (the first item's, for a batch)."""
    if isinstance(body, list) and body:
        body = body[0]
    return body.get("from") if isinstance(body, dict) else None
