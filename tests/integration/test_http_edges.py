"""Against real gunicorn: whatever bytes a client sends, and however slowly, the answer is JSON or a closed connection."""

from urllib.parse import urlparse

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from infra.process import wait_until
from producer_service.config import DEFAULT_THREADS, DEFAULT_WORKERS
from tests.support.raw_http import RawAnswer, Slowloris, exchange

READ_TIMEOUT_S = 3
# How late a 408 may come: the worker checks deadlines about once a second, the slow clients every 0.2 s.
MARGIN_S = 3
PROTECTIVE = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}
ERROR_SHAPE = {"error", "message", "details"}
# The chat page and its scripts and styles are the only answers that are not JSON.
PAGE_TYPES = {"text/html", "text/javascript", "text/css"}


@pytest.fixture(scope="module")
def stack(stack_factory):
    """A producer under gunicorn whose requests must arrive within READ_TIMEOUT_S."""
    return stack_factory(REQUEST_READ_TIMEOUT_S=READ_TIMEOUT_S)


@pytest.fixture(scope="module")
def port(stack) -> int:
    """The producer's port."""
    return urlparse(stack.api.base_url).port


@pytest.fixture(scope="module")
def signed(stack):
    """Put clientA's token into a raw request, after its request line, so that the request gets past authentication."""
    header = f"Authorization: Bearer {stack.api.tokens['clientA']}\r\n".encode()
    return lambda data: data.replace(b"\r\n", b"\r\n" + header, 1)


def send(port: int, data: bytes, method: str = "GET") -> RawAnswer | None:
    """One raw request on a new connection; no answer within the read timeout and margin fails the test."""
    return exchange(port, data, timeout=READ_TIMEOUT_S + MARGIN_S, method=method)


def assert_json_error(answer: RawAnswer | None, status: int) -> None:
    """A JSON error of the API's shape, with the protective headers and nothing naming the server software."""
    assert answer is not None, "the connection closed without an answer"
    assert answer.status == status, (answer.status, answer.body[:300])
    assert answer.header("Content-Type") == "application/json"
    assert set(answer.json()) == ERROR_SHAPE and answer.json()["details"] == {}
    assert_neutral_headers(answer)


def assert_neutral_headers(answer: RawAnswer) -> None:
    """The protective headers are there and no header names gunicorn."""
    assert all(answer.header(name) == value for name, value in PROTECTIVE.items()), answer.headers
    assert answer.header("Content-Security-Policy")
    assert not any("gunicorn" in f"{name}: {value}".lower() for name, value in answer.headers), answer.headers


def test_a_normal_answer_does_not_name_the_server_software(port):
    answer = send(port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer.status == 200 and answer.json() == {"status": "ok"}
    assert_neutral_headers(answer)


@pytest.mark.parametrize("request_bytes, status", [
    pytest.param(b"GET /health HTTP/1.1 extra\r\nHost: x\r\n\r\n", 400, id="bad request line"),
    pytest.param(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400, id="TLS hello on the plain port"),
    pytest.param(b"GET /" + b"a" * 10_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, id="10 KB URI"),
    pytest.param(b"GET /health HTTP/1.1\r\n" + b"".join(b"X-H%d: v\r\n" % n for n in range(200)) + b"\r\n", 431,
                 id="200 headers"),
    pytest.param(b"GET /health HTTP/1.1\r\nX-Big: " + b"v" * 10_000 + b"\r\n\r\n", 431, id="10 KB header"),
    pytest.param(b"GET /health HTTP/1.1\r\n" + b"".join(b"X-H%d: %s\r\n" % (n, b"v" * 1000) for n in range(70)) + b"\r\n",
                 431, id="70 KB of headers, each within gunicorn's limits"),
    pytest.param(b"GET /health HTTP/1.1\r\nBad Header: v\r\n\r\n", 400, id="invalid header name"),
    pytest.param(b"GET /health HTTP/1.1\nHost: x\n\n", 400, id="bare LF line ends"),
    pytest.param(b"POST /send-message HTTP/1.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"zz\r\n{}\r\n0\r\n\r\n", 400, id="malformed chunked body"),
    pytest.param(b"POST /send-message HTTP/1.1\r\nTransfer-Encoding: br, chunked\r\n\r\n0\r\n\r\n", 400,
                 id="unsupported transfer coding"),
    pytest.param(b"GET /health HTTP/1.1\r\nExpect: 200-ok\r\n\r\n", 417, id="unknown expectation"),
])
def test_what_gunicorn_refuses_is_answered_with_a_json_error(port, signed, request_bytes, status):
    assert_json_error(send(port, signed(request_bytes)), status)


def test_a_request_head_that_stops_arriving_is_answered_408_at_the_deadline(port):
    answer = send(port, b"GET /health HTTP/1.1\r\nHost: x\r\n")
    assert_json_error(answer, 408)


def test_a_body_that_stops_arriving_is_answered_408_at_the_deadline(port):
    answer = send(port, b"POST /send-message HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
    assert_json_error(answer, 408)


def test_a_body_left_to_a_thread_must_arrive_by_the_same_deadline(port, signed):
    # After 'Expect: 100-continue' the thread serving the request reads the body; werkzeug answers its timeout with 400.
    answer = send(port, signed(b"POST /send-message HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n"
                        b"Expect: 100-continue\r\n\r\n{"))
    assert_json_error(answer, 400)


def test_trickling_clients_are_cut_off_at_the_deadline_while_another_client_is_served(port):
    count = DEFAULT_WORKERS * DEFAULT_THREADS + 16  # more than the producer's request threads
    with Slowloris(port, count, interval=0.2) as slow:
        wait_until(lambda: slow.rounds >= 2, timeout=READ_TIMEOUT_S, interval=0.05, what="two bytes from each slow client")
        answer = send(port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert answer.status == 200
        assert slow.unanswered() == count, "the other client was only served once slow ones were cut off"
        wait_until(lambda: len(slow.answers) == count, timeout=READ_TIMEOUT_S + MARGIN_S, interval=0.1,
                   what="an answer to every slow client")
    for answer, open_for in slow.answers:
        assert open_for <= READ_TIMEOUT_S + MARGIN_S
        if answer is not None:  # or the connection was closed (reset, as the client kept sending)
            assert_json_error(answer, 408)


LATIN_1 = st.characters(min_codepoint=0, max_codepoint=255)
# Each part of a request, valid or anything at all; a drawn request corrupts at most one part.
PARTS = {
    "method": (st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE"]),
               st.text(LATIN_1, max_size=8)),
    "target": (st.sampled_from(["/health", "/ready", "/messages", "/failed-messages", "/send-message", "/send-messages",
                                "/messages?limit=1", "/health?x=%zz", "//health", "/nowhere", "*",
                                "http://example.com/health"]),
               st.text(LATIN_1, max_size=30).map(lambda text: "/" + text)),
    "version": (st.sampled_from(["HTTP/1.1", "HTTP/1.0"]),
                st.one_of(st.sampled_from(["HTTP/2.0", "HTTP/0.9", "HTTP/1.2", "http/1.1", "HTTP/1", ""]),
                          st.text(LATIN_1, max_size=10))),
    "headers": (st.lists(st.tuples(st.sampled_from(["Host", "Accept", "Content-Type", "Authorization", "Connection",
                                                    "X-Forwarded-For", "Upgrade", "Cookie", "Range", "X-Request-Id"]),
                                   st.sampled_from(["x", "close", "keep-alive", "application/json", "*/*", "h2c",
                                                    "Bearer s3cret-operator-token-of-32-chars-or-more", "bytes=0-1", ""])), max_size=4),
                st.lists(st.tuples(st.text(LATIN_1, max_size=20), st.text(LATIN_1, max_size=40)), min_size=1,
                         max_size=4)),
}
FRAMING_HEADERS = ("content-length", "transfer-encoding", "expect")
# The body and its framing are drawn whole, so that a head always ends and its body always arrives.
BODIES = st.one_of(
    st.just((b"", b"")),
    st.one_of(st.binary(max_size=200), st.sampled_from([b'{"from": "a", "to": "b", "message": "hi"}', b"[]", b"{}"]))
    .map(lambda body: (b"Content-Length: %d\r\n" % len(body), body)),
    st.binary(min_size=1, max_size=200).map(lambda body: (b"Transfer-Encoding: chunked\r\n",
                                                          b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))),
    st.binary(max_size=60).map(lambda junk: (b"Transfer-Encoding: chunked\r\n", junk + b"\r\n\r\n")),
)


@st.composite
def raw_requests(draw) -> tuple[bytes, str]:
    """A request with at most one part drawn from anything (control characters and all); and its method."""
    corrupt = draw(st.sampled_from([None, *PARTS]))
    part = {name: draw(anything if name == corrupt else valid) for name, (valid, anything) in PARTS.items()}
    headers = [(name, value) for name, value in part["headers"] if name.strip().lower() not in FRAMING_HEADERS]
    framing, body = draw(BODIES)
    head = f"{part['method']} {part['target']} {part['version']}\r\n" + "".join(f"{n}: {v}\r\n" for n, v in headers)
    return head.encode("latin-1") + framing + b"\r\n" + body, part["method"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(request=raw_requests())
def test_any_request_bytes_get_json_2xx_or_4xx_or_a_closed_connection(port, request):
    data, method = request
    answer = send(port, data, method="HEAD" if method == "HEAD" else "GET")
    event(f"answer: {answer.status if answer else 'closed'}")
    if answer is None:
        return
    assert 200 <= answer.status < 300 or 400 <= answer.status < 500, (answer.status, answer.body[:300])
    content_type = answer.header("Content-Type")
    target = data.split(b" ", 2)[1] if data.count(b" ") >= 2 else b""
    page = answer.status == 200 and (target.split(b"?")[0] == b"/" or target.startswith(b"/assets/"))
    assert (content_type == "application/json" or (content_type is None and answer.status == 204)
            or (page and content_type.split(";")[0] in PAGE_TYPES)), answer.headers
    assert_neutral_headers(answer)
    if answer.status >= 400 and method != "HEAD":
        assert set(answer.json()) == ERROR_SHAPE
