"""The worker's own decisions: when a request has arrived whole, and how gunicorn's errors are answered."""

import json
import signal
import threading

import pytest
from gunicorn import util
from gunicorn.http import errors as http_errors

from shared_adapters import http_worker
from shared_adapters.http_worker import (COMPLETE, HEAD_TOO_LARGE, INCOMPLETE, _error_of, arrival, error_answer,
                                         guarded_worker, stream_request_starts)

HEAD = b"POST /send-message HTTP/1.1\r\nHost: x\r\n"


@pytest.mark.parametrize("received, state", [
    (b"", INCOMPLETE),
    (b"GET /health HTTP/1.1\r\nHost: x\r\n", INCOMPLETE),
    (b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n", COMPLETE),
    (b"GET /health HTTP/1.1\nHost: x", COMPLETE),  # a bare LF, refused by gunicorn at once
    (HEAD + b"Content-Length: 5\r\n\r\nabc", INCOMPLETE),
    (HEAD + b"content-length:5\r\n\r\nabcde", COMPLETE),
    (HEAD + b"Content-Length: 1000\r\n\r\n" + b"a" * 999, INCOMPLETE),
    (HEAD + b"Content-Length: 1025\r\n\r\n", COMPLETE),  # larger than the app takes: it answers 413 unread
    (HEAD + b"Content-Length: " + b"9" * 5000 + b"\r\n\r\n", COMPLETE),  # no number, left to gunicorn to refuse
    (HEAD + b"Content-Length: 5\r\nExpect: 100-continue\r\n\r\n", COMPLETE),  # the body follows '100 Continue'
    (HEAD + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", INCOMPLETE),
    (HEAD + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", COMPLETE),
    (HEAD + b"Transfer-Encoding: chunked\r\n\r\n0\r\nX-Trailer: t\r\n\r\n", COMPLETE),
    (HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + b"a" * 1024, COMPLETE),  # as much as the app takes
    (b"GET /health HTTP/1.1\r\n" + b"X: " + b"v" * 9000, HEAD_TOO_LARGE),
    (b"GET /health HTTP/1.1\r\n" + b"X: " + b"v" * 9000 + b"\r\n\r\n", HEAD_TOO_LARGE),
])
def test_a_request_is_complete_once_a_thread_need_not_wait_for_the_client(received, state):
    assert arrival(received, max_head=8192, max_body=1024) == state


@pytest.mark.parametrize("error, status", [
    (http_errors.InvalidRequestLine("x"), 400),
    (http_errors.InvalidHeaderName("x"), 400),
    (http_errors.InvalidChunkSize(b"zz"), 400),
    (http_errors.LimitRequestLine(10_000, 4094), 414),
    (http_errors.LimitRequestHeaders("limit request headers fields"), 431),
    (http_errors.ExpectationFailed("200-ok"), 417),
    (http_errors.UnsupportedTransferCoding("gzip"), 400),
    (http_errors.InvalidResponseHeader("X-Bad"), 500),  # the application's fault, not the client's
    (RuntimeError("boom"), 500),
])
def test_gunicorn_errors_map_to_statuses(error, status):
    assert _error_of(error)[0] == status


def test_an_error_answer_is_json_with_the_protective_headers_and_closes():
    head, body = error_answer(408, "request_timeout", "too slow").split(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "HTTP/1.1 408 Request Timeout"
    assert {"Connection: close", "Content-Type: application/json", f"Content-Length: {len(body)}",
            "X-Content-Type-Options: nosniff", "Cache-Control: no-store"} <= set(lines)
    assert json.loads(body) == {"error": "request_timeout", "message": "too slow", "details": {}}


def test_a_second_sigterm_while_streams_are_being_ended_does_not_deadlock_the_worker():
    from types import SimpleNamespace

    from producer_service.application.live import Hub
    from shared_adapters.http_worker import END_STREAMS, GuardedThreadWorker

    hub = Hub(per_client=5, capacity=10)
    subscription = hub.subscribe("clientA")
    worker = object.__new__(GuardedThreadWorker)
    worker.alive = True
    worker.method_queue = SimpleNamespace(defer=lambda *args: None)
    worker.wsgi = SimpleNamespace(extensions={END_STREAMS: hub.close})
    offer, nested = subscription.offer, []

    def offer_then_signal_again(event):
        # The master's SIGTERM arrives while the first one's handling is ending the streams.
        if not nested:
            nested.append(True)
            worker.handle_exit(signal.SIGTERM, None)
        offer(event)

    subscription.offer = offer_then_signal_again
    handler = threading.Thread(target=worker.handle_exit, args=(signal.SIGTERM, None), daemon=True)
    handler.start()
    handler.join(5)
    assert not handler.is_alive(), "the signal handler returned"
    assert subscription.next(timeout=5) is None, "the stream is told to end"


def test_only_the_requests_the_app_names_go_to_the_stream_threads():
    producer = guarded_worker(10.0, 65536, 100, stream_request_starts("GET", ["/stream"]))
    assert b"GET /stream HTTP/1.1\r\n".startswith(producer.stream_starts)
    assert b"GET /stream?after=abc HTTP/1.1\r\n".startswith(producer.stream_starts)
    for other in (b"GET /streams HTTP/1.1\r\n", b"POST /stream HTTP/1.1\r\n", b"GET /messages HTTP/1.1\r\n"):
        assert not other.startswith(producer.stream_starts)
    assert not b"GET /stream HTTP/1.1\r\n".startswith(guarded_worker(10.0, 65536, 1).stream_starts)


def test_the_date_header_is_the_current_second_as_gunicorn_writes_it(monkeypatch):
    seconds = iter([1_800_000_000.2, 1_800_000_000.9, 1_800_000_001.1])
    monkeypatch.setattr(http_worker.time, "time", lambda: next(seconds))
    first, same_second, next_second = http_worker.http_date(), http_worker.http_date(), http_worker.http_date()
    assert first == same_second == util.http_date(1_800_000_000) == "Fri, 15 Jan 2027 08:00:00 GMT"
    assert next_second == util.http_date(1_800_000_001)
