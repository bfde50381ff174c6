"""Against real gunicorn with one request thread: a deferred answer holds no thread, and is a whole HTTP answer."""

import json
import socket
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from infra.process import ManagedProcess, free_ports, wait_until
from tests.support.raw_http import exchange, read_answer

BIN = Path(sys.executable).parent
HELD = 8


def post(path: str, headers: str = "") -> bytes:
    """A POST with no body, kept alive."""
    return f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n{headers}\r\n".encode()


@pytest.fixture(scope="module")
def port(tmp_path_factory):
    """gunicorn serving tests.support.deferring_app with one worker of one thread."""
    port = free_ports(1)[0]
    argv = [str(BIN / "gunicorn"), "-c", "python:tests.support.deferring_app", "--bind", f"127.0.0.1:{port}",
            "tests.support.deferring_app:app"]
    process = ManagedProcess("deferring", argv, tmp_path_factory.mktemp("deferring") / "gunicorn.log")
    process.start()
    try:
        wait_until(lambda: held_count(port) == 0, timeout=30, interval=0.05, what="the app's answers", process=process)
        yield port
    finally:
        process.stop()


def held_count(port: int) -> int | None:
    """How many requests the app holds; None while it does not answer."""
    try:
        answer = exchange(port, b"GET /held-count HTTP/1.1\r\nHost: t\r\n\r\n", timeout=2)
    except OSError:
        return None
    return answer.json()["held"] if answer is not None and answer.status == 200 else None


def test_held_answers_leave_the_only_thread_free_and_each_is_written_when_released(port):
    connections = [socket.create_connection(("127.0.0.1", port), timeout=15) for _ in range(HELD)]
    try:
        for number, connection in enumerate(connections):
            connection.sendall(post("/held", f"X-Request-Id: held-{number}\r\n"))
        wait_until(lambda: held_count(port) == HELD, timeout=10, interval=0.05, what=f"{HELD} held requests")
        # Served by the one thread while eight requests wait for their answers.
        assert exchange(port, post("/release"), timeout=10).json() == {"released": HELD}
        with ThreadPoolExecutor(HELD) as pool:
            answers = list(pool.map(read_answer, connections))
        for number, answer in enumerate(answers):
            assert answer.status == 201 and json.loads(answer.body) == {"releasedWith": HELD}
            assert answer.header("X-Released") == "yes" and answer.header("Content-Type") == "application/json"
            # What the app's hooks give every answer: the protective headers and the request's trace id.
            assert answer.header("X-Content-Type-Options") == "nosniff" and answer.header("Cache-Control") == "no-store"
            assert answer.header("X-Request-Id") == f"held-{number}"
            assert answer.header("Connection") == "keep-alive" and answer.header("Server") == "api"
        # A kept-alive connection serves its next request after a deferred answer.
        connections[0].sendall(b"GET /held-count HTTP/1.1\r\nHost: t\r\n\r\n")
        assert read_answer(connections[0]).json() == {"held": 0}
    finally:
        for connection in connections:
            connection.close()


def test_a_failed_outcome_is_answered_with_the_apis_500_and_the_connection_closes_when_asked(port):
    with socket.create_connection(("127.0.0.1", port), timeout=15) as connection:
        connection.sendall(post("/held", "Connection: close\r\n"))
        wait_until(lambda: held_count(port) == 1, timeout=10, interval=0.05, what="a held request")
        assert exchange(port, post("/fail"), timeout=10).json() == {"failed": 1}
        answer = read_answer(connection)
        assert answer.status == 500 and answer.json()["error"] == "internal_error"
        assert answer.header("Connection") == "close" and connection.recv(1) == b""


def test_an_answer_the_worker_cannot_write_is_the_apis_500_and_the_worker_serves_on(port):
    with socket.create_connection(("127.0.0.1", port), timeout=15) as connection:
        connection.sendall(post("/held-unwritable"))
        wait_until(lambda: held_count(port) == 1, timeout=10, interval=0.05, what="a held request")
        exchange(port, post("/release"), timeout=10)
        answer = read_answer(connection)
        assert answer.status == 500 and answer.json()["error"] == "internal_error"
        assert answer.header("Connection") == "close" and connection.recv(1) == b""
    assert held_count(port) == 0, "the next request is served"


def test_a_request_on_http_1_0_gets_its_answer_in_http_1_0(port):
    with socket.create_connection(("127.0.0.1", port), timeout=15) as connection:
        connection.sendall(b"POST /held HTTP/1.0\r\nContent-Length: 0\r\n\r\n")
        wait_until(lambda: held_count(port) == 1, timeout=10, interval=0.05, what="a held request")
        exchange(port, post("/release"), timeout=10)
        head = b""
        while b"\r\n\r\n" not in head:
            head += connection.recv(4096)
        assert head.startswith(b"HTTP/1.0 201 Created\r\n")
