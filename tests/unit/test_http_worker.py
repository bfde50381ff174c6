"""How the worker answers what gunicorn refuses."""

import json

import pytest
from gunicorn.http import errors as http_errors

from producer_service.entrypoints.http_worker import _error_of, error_answer

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
