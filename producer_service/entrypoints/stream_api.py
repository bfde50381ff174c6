"""GET /stream: the caller's messages as Server-Sent Events, the moment they are stored, resumable."""

import json

from flask import Blueprint, Response, request

from shared_adapters.access import principal, protect, still_allowed
from shared_adapters.errors import ApiError, store_unavailable, unavailable
from shared_domain.availability import StoreUnavailable
from shared_domain.clock import to_iso
from shared_domain.identity import CLIENT

from ..application.live import (InvalidPosition, Position, ResumeTooFar, StreamItem, TooManyStreams, ViewsBehind,
                                open_stream)
from ..infrastructure.kafka_stored_events import FeedUnavailable
from .metrics import OPEN_STREAMS
from .services import services

bp = Blueprint("stream", __name__)
protect(bp, CLIENT)
# A client whose socket takes no bytes for this long is cut off (its thread and buffers freed).
STALLED_WRITE_S = 30
RECONNECT_MS = 2000
# Its requests hold a thread as long as the stream is open: the server serves them with threads of their own.
STREAM_PATH = "/stream"


@bp.get(STREAM_PATH)
def stream():
    """Open the caller's stream: where it stands, what it missed since `Last-Event-ID` or `after`, then live."""
    client = _client()
    after = _position()
    live, settings = services().live, services().settings
    try:
        live.start_feed()
        items = open_stream(client, after, live.hub, live.history, settings.stream_heartbeat_s,
                            settings.stream_backfill_limit, live.feed_read)
    except TooManyStreams as error:
        raise ApiError(429, "too_many_streams", str(error), headers={"Retry-After": str(settings.retry_after_s)}) from None
    except ResumeTooFar as error:
        raise ApiError(409, "resume_too_far", f"{error}: load GET /messages again and open a new stream") from None
    except FeedUnavailable as error:
        raise unavailable("broker_unavailable", "live delivery is not available; try again later",
                          settings.retry_after_s, error) from None
    except StoreUnavailable as error:
        raise store_unavailable(settings.retry_after_s, error) from None
    except ViewsBehind as error:
        raise unavailable("views_behind", "the conversation views are catching up; try again shortly",
                          settings.retry_after_s, error) from None
    sock = request.environ.get("gunicorn.socket")
    if sock is not None:
        sock.settimeout(STALLED_WRITE_S)
    return Response(_EventStream(items, still_allowed()), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _client() -> str:
    """Whose stream: the caller's (with authentication off, the `client` parameter)."""
    caller = principal()
    if caller is not None:
        return caller.name
    client = request.args.get("client", "")
    if not client:
        raise ApiError(400, "validation_failed", "name the client whose stream to open",
                       {"client": ["required while authentication is off"]})
    return client


def _position() -> Position | None:
    """Where to resume: the browser's Last-Event-ID, else `after`, else nowhere (live from now)."""
    given = request.headers.get("Last-Event-ID") or request.args.get("after")
    if not given:
        return None
    try:
        return Position.decode(given)
    except InvalidPosition as error:
        raise ApiError(400, "invalid_position", f"the resume position is {error}",
                       {"Last-Event-ID": [str(error)]}) from None


class _EventStream:
    """The stream's items as SSE text; closing it frees the stream's place.

    At each heartbeat it checks that its caller may still read (token not revoked, session not
    ended), and ends when not: a revocation or a sign-out reaches open streams within a heartbeat.
    """

    def __init__(self, items, allowed):
        self._items, self._allowed = items, allowed
        self._open = True
        OPEN_STREAMS.inc()

    def __iter__(self):
        yield f"retry: {RECONNECT_MS}\n\n"
        for item in self._items:
            if item.kind == "heartbeat" and not self._allowed():
                return
            yield sse_text(item)

    def close(self) -> None:
        self._items.close()
        if self._open:
            self._open = False
            OPEN_STREAMS.dec()


def sse_text(item: StreamItem) -> str:
    """One stream item as Server-Sent Events text."""
    if item.kind == "heartbeat":
        return ": keep-alive\n\n"
    if item.kind == "message":
        message = item.event.message
        data = {"messageId": message.message_id, "from": message.sender, "to": message.recipient,
                "message": message.text, "sentAt": to_iso(message.sent_at)}
        return f"id: {item.position}\nevent: chat-message\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
    if item.kind == "overflow":
        data = {"error": "too_slow", "message": "the stream fell too far behind; reconnect to resume"}
        return f"id: {item.position}\nevent: overflow\ndata: {json.dumps(data)}\n\n"
    return f"id: {item.position}\nevent: position\ndata: {json.dumps({'position': item.position})}\n\n"
