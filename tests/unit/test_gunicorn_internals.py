"""The gunicorn internals that shared_adapters/http_worker.py builds on are still there and still behave.

GuardedThreadWorker subclasses gunicorn's gthread worker and reaches into its connections, parser
and event loop, none of which is public API. pyproject.toml therefore pins gunicorn to one major
version, and a release that moves any of these internals fails here, each failure naming what the
worker would lose, before it fails in production.
"""

import ast
import importlib
import importlib.metadata
import inspect
import os
import re
import selectors
import socket
import textwrap
import time
import tomllib
from concurrent import futures
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from gunicorn import util
from gunicorn.config import Config
from gunicorn.http import errors as http_errors
from gunicorn.http import unreader, wsgi
from gunicorn.workers import base, gthread

ROOT = Path(__file__).resolve().parents[2]
SLOW_CLIENTS = "the slow-client protection (requests read whole in the event loop, 408 past the deadline)"
HEAD_END = b"\r\n\r\n"
REQUEST = b"GET /health HTTP/1.1\r\nHost: x" + HEAD_END


def _gunicorn_bounds() -> tuple[Version, Version]:
    """The lower and upper bounds pyproject.toml puts on gunicorn."""
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    [specifier] = [Requirement(d).specifier for d in dependencies if Requirement(d).name == "gunicorn"]
    lower = [Version(s.version) for s in specifier if s.operator == ">="]
    upper = [Version(s.version) for s in specifier if s.operator == "<"]
    assert len(lower) == 1 and len(upper) == 1, (
        f"pyproject.toml must bound gunicorn to one major version ('gunicorn>=N,<N+1'), not {specifier}: "
        f"http_worker.py relies on gunicorn internals that change between majors ({SLOW_CLIENTS})")
    return lower[0], upper[0]


def test_the_installed_gunicorn_is_the_major_version_pinned_in_pyproject_and_the_lock():
    lower, upper = _gunicorn_bounds()
    assert upper == Version(str(lower.major + 1)), (
        f"pyproject.toml's gunicorn bounds >={lower},<{upper} span more than one major version: "
        f"a release with other internals would be accepted, and with it {SLOW_CLIENTS} could be lost")
    installed = Version(importlib.metadata.version("gunicorn"))
    assert installed.major == lower.major, (
        f"gunicorn {installed} is installed but pyproject.toml pins major {lower.major}: the checks below were "
        f"written against {lower.major}.x, and http_worker.py may lose {SLOW_CLIENTS}")
    locked = re.search(r"^gunicorn==(\S+)", (ROOT / "requirements.lock").read_text(), re.MULTILINE)
    assert locked and Version(locked[1]).major == lower.major, (
        f"requirements.lock must pin gunicorn {lower.major}.x like pyproject.toml, not "
        f"{locked[1] if locked else 'nothing'}: regenerate it with the command in its header")


# What http_worker.py imports from gunicorn: (module, name, what the worker loses without it).
IMPORTED = [
    ("gunicorn.workers.gthread", "ThreadWorker", "its base class, the whole worker"),
    ("gunicorn.workers.gthread", "TConn", "the connections it reads requests from"),
    ("gunicorn.http.unreader", "SocketUnreader", "the deadline on a body left for a thread to read (408)"),
    ("gunicorn.http.body", "LengthReader", "keeping a connection alive without a drain when the app read the body"),
    ("gunicorn.http.wsgi", "SERVER", "a Server header that does not name the software"),
    ("gunicorn.util", "write_nonblock", "writing JSON error answers without waiting on the client"),
    ("gunicorn.http.errors", "ParseException", "telling client errors (4xx) from server errors (500)"),
    ("gunicorn.http.errors", "LimitRequestLine", "the JSON 414 for a too long request line"),
    ("gunicorn.http.errors", "LimitRequestHeaders", "the JSON 431 for too many or too large header fields"),
    ("gunicorn.http.errors", "ExpectationFailed", "the JSON 417 for an Expect other than 100-continue"),
    ("gunicorn.http.errors", "ForbiddenProxyRequest", "the JSON 403 for a forbidden proxy request"),
    ("gunicorn.http.errors", "UnsupportedTransferCoding", "the JSON 400 for an unsupported transfer coding"),
    ("gunicorn.http.errors", "InvalidResponseHeader", "answering the app's own bad header with 500, not 400"),
    ("gunicorn.http.errors", "InvalidResponseHeaderName", "answering the app's own bad header name with 500, not 400"),
]


@pytest.mark.parametrize(("module", "name", "loss"), IMPORTED, ids=[f"{m}.{n}" for m, n, _ in IMPORTED])
def test_what_the_worker_imports_is_there(module, name, loss):
    assert hasattr(importlib.import_module(module), name), (
        f"{module}.{name} is gone: shared_adapters/http_worker.py would fail to import or lose {loss}")


@pytest.mark.parametrize("name", ["LimitRequestLine", "LimitRequestHeaders", "ExpectationFailed",
                                  "ForbiddenProxyRequest", "UnsupportedTransferCoding"])
def test_the_client_errors_the_worker_maps_are_parse_exceptions(name):
    assert issubclass(getattr(http_errors, name), http_errors.ParseException), (
        f"gunicorn's {name} is no longer a ParseException: http_worker.py would answer it with a 500 "
        f"instead of its 4xx JSON error")


# What http_worker.py overrides, calls or hands on, with the parameters it relies on: "name=value"
# means it relies on that default too, "name=" on there being a default it leaves alone.
# (module:qualified name, parameters, what the worker loses.)
SIGNATURES = [
    ("gunicorn.workers.gthread:ThreadWorker.__init__", ["self", "args", "kwargs"],
     "its own state (the requests arriving), set up after gunicorn's"),
    ("gunicorn.workers.base:Worker.__init__", ["self", "age", "ppid", "sockets", "app", "timeout", "cfg", "log"],
     "its own state (the requests arriving), set up after gunicorn's"),
    ("gunicorn.workers.gthread:ThreadWorker.check_config", ["cfg", "log"],
     "refusing TLS and cleartext HTTP/2, whose bytes a thread would read, at start-up"),
    ("gunicorn.workers.gthread:ThreadWorker.init_process", ["self"],
     "the anonymous Server header and the stream threads, made before the event loop starts"),
    ("gunicorn.workers.gthread:ThreadWorker.handle_exit", ["self", "sig", "frame"],
     "ending the open streams on SIGTERM, so graceful shutdown does not wait on them"),
    ("gunicorn.workers.gthread:ThreadWorker.enqueue_req", ["self", "conn"], SLOW_CLIENTS),
    ("gunicorn.workers.gthread:ThreadWorker.murder_pending", ["self"],
     "the 408 to requests not whole by their deadline"),
    ("gunicorn.workers.gthread:ThreadWorker.handle", ["self", "conn"], "serving a whole request on a thread"),
    ("gunicorn.workers.gthread:ThreadWorker._keepalive_after", ["self", "conn", "keepalive"],
     "keeping a connection alive without a drain when the app read the body"),
    ("gunicorn.workers.gthread:ThreadWorker.finish_request", ["self", "conn", "fs"],
     "keep-alive and the closing of connections after a thread served them"),
    ("gunicorn.workers.gthread:ThreadWorker.handle_error", ["self", "req", "client", "addr", "exc"],
     "JSON error answers instead of gunicorn's HTML ones"),
    ("gunicorn.workers.gthread:PollableMethodQueue.defer", ["self", "callback", "args"],
     "handing a served connection back to the event loop (finish_request)"),
    ("gunicorn.workers.gthread:TConn.__init__", ["self", "cfg", "sock", "client", "server"], SLOW_CLIENTS),
    ("gunicorn.workers.gthread:TConn.init", ["self"], "the parser a thread serves the request with"),
    ("gunicorn.workers.gthread:TConn.close", ["self", "graceful=False"],
     "closing refused and abandoned connections"),
    ("gunicorn.http.unreader:SocketUnreader.__init__", ["self", "sock", "max_chunk="],
     "the deadline on a body left for a thread to read (408)"),
    ("gunicorn.http.unreader:SocketUnreader.chunk", ["self", "size_hint=None"],
     "the deadline on a body left for a thread to read (408)"),
    ("gunicorn.http.unreader:Unreader.unread", ["self", "data"],
     "giving the parser the request read in the event loop"),
    ("gunicorn.http.unreader:Unreader.take_buffered", ["self"],
     "the start of a pipelined request read with the previous one, on a kept-alive connection"),
    ("gunicorn.util:write_nonblock", ["sock", "data", "chunked=False"],
     "writing JSON error answers without waiting on the client"),
]


def _parameters(function, expected: list[str]) -> list[str]:
    """The function's parameter names, each with its default where `expected` asks about one."""
    asked = dict(e.split("=", 1) for e in expected if "=" in e)
    described = []
    for parameter in inspect.signature(function).parameters.values():
        if parameter.name not in asked or parameter.default is parameter.empty:
            described.append(parameter.name)
        else:
            described.append(f"{parameter.name}={repr(parameter.default) if asked[parameter.name] else ''}")
    return described


@pytest.mark.parametrize(("target", "expected", "loss"), SIGNATURES, ids=[t for t, _, _ in SIGNATURES])
def test_what_the_worker_overrides_or_calls_has_the_parameters_it_relies_on(target, expected, loss):
    module, _, qualname = target.partition(":")
    function = importlib.import_module(module)
    for name in qualname.split("."):
        function = getattr(function, name, None)
        assert function is not None, f"{target} is gone: shared_adapters/http_worker.py would lose {loss}"
    assert _parameters(function, expected) == expected, (
        f"{target} now takes {inspect.signature(function)}, not ({', '.join(expected)}): "
        f"shared_adapters/http_worker.py would lose {loss}")


@pytest.fixture
def worker():
    """A GuardedThreadWorker as gunicorn's arbiter makes it, before its process is initialised."""
    from shared_adapters.http_worker import GuardedThreadWorker

    made = GuardedThreadWorker(age=1, ppid=os.getpid(), sockets=[], app=None, timeout=30, cfg=Config(),
                               log=mock.Mock())
    yield made
    if made.poller is not None:
        made.poller.close()
    made.tmp.close()


@pytest.fixture
def pair():
    """A connected pair of sockets: the server's end first, then the client's."""
    server_end, client_end = socket.socketpair()
    client_end.settimeout(5)
    yield server_end, client_end
    server_end.close()
    client_end.close()


def _connection(sock):
    """A TConn as ThreadWorker.accept makes it."""
    return gthread.TConn(Config(), sock, ("127.0.0.1", 50000), ("127.0.0.1", 8000))


def test_the_worker_state_gunicorn_sets_up_is_there(worker):
    for name, loss in [("nr_conns", "counting the connections it closes itself (refused, 408, gone)"),
                       ("poller", SLOW_CLIENTS), ("tpool", "the thread pool ordinary requests are served on"),
                       ("method_queue", "handing a served connection back to the event loop"),
                       ("keepalived_conns", "keep-alive"), ("log", "logging refused and invalid requests"),
                       ("alive", "graceful shutdown")]:
        assert hasattr(worker, name), f"ThreadWorker has no {name} any more: http_worker.py would lose {loss}"
    assert worker.nr_conns == 0, f"ThreadWorker.nr_conns starts at {worker.nr_conns}: the connection count is off"
    assert "self.wsgi =" in inspect.getsource(base.Worker.load_wsgi), (
        "Worker.load_wsgi no longer sets self.wsgi: http_worker.py would lose ending the streams on SIGTERM")


def test_init_process_makes_the_pool_and_poller_before_the_worker_loop_starts(worker, monkeypatch):
    monkeypatch.setattr(wsgi, "SERVER", wsgi.SERVER)  # the worker sets it; put it back afterwards
    seen = {}
    monkeypatch.setattr(base.Worker, "init_process",
                        lambda self: seen.update(tpool=self.tpool, poller=self.poller, queue=self.method_queue))
    worker.init_process()
    try:
        assert isinstance(seen.get("tpool"), futures.Executor) and hasattr(seen["tpool"], "submit"), (
            "ThreadWorker.init_process no longer makes self.tpool before the loop: http_worker.py would lose "
            "the thread pool it hands whole requests to")
        assert isinstance(seen.get("poller"), selectors.BaseSelector), (
            f"ThreadWorker.init_process no longer makes the selector self.poller before the loop: {SLOW_CLIENTS} "
            "is lost, it registers arriving requests there")
        assert seen["queue"].fileno() is not None, (
            "ThreadWorker.init_process no longer opens the method queue: served connections would never come back")
    finally:
        worker.tpool.shutdown()
        worker.stream_pool.shutdown()
        worker.method_queue.close()


def test_responses_take_their_server_header_from_the_wsgi_module_global(monkeypatch):
    monkeypatch.setattr(wsgi, "SERVER", "api")
    request = SimpleNamespace(version=(1, 1), method="GET", should_close=lambda: False)
    response = wsgi.Response(request, None, Config())
    response.status, response.status_code = "200 OK", 200
    assert "Server: api\r\n" in response.default_headers(), (
        "gunicorn's Response no longer copies gunicorn.http.wsgi.SERVER into its Server header: "
        "http_worker.py would lose the Server header that does not name the software")


def test_a_new_connection_is_counted_and_goes_through_enqueue_req(worker):
    with socket.create_server(("127.0.0.1", 0)) as listener, \
            socket.create_connection(listener.getsockname(), timeout=5):
        worker.enqueue_req = mock.Mock()
        worker.accept(listener)
        assert worker.enqueue_req.call_count == 1, (
            f"ThreadWorker.accept no longer hands a new connection to enqueue_req: {SLOW_CLIENTS} is lost "
            "for every new connection")
        [conn] = worker.enqueue_req.call_args.args
        assert isinstance(conn, gthread.TConn) and worker.nr_conns == 1, (
            "ThreadWorker.accept no longer counts a new connection as a TConn in nr_conns: http_worker.py's "
            "count of the connections it closes itself would be off")
        conn.close()


def test_a_kept_alive_connection_with_a_new_request_goes_through_enqueue_req(worker, pair):
    conn = _connection(pair[0])
    worker.poller = selectors.DefaultSelector()
    worker.poller.register(conn.sock, selectors.EVENT_READ, None)
    worker.keepalived_conns.append(conn)
    worker.enqueue_req = mock.Mock()
    worker.on_client_socket_readable(conn, conn.sock)
    assert worker.enqueue_req.call_args_list == [mock.call(conn)], (
        f"ThreadWorker.on_client_socket_readable no longer uses enqueue_req: {SLOW_CLIENTS} is lost "
        "on kept-alive connections")
    assert not worker.poller.get_map() and conn not in worker.keepalived_conns, (
        "ThreadWorker.on_client_socket_readable no longer unregisters the connection: http_worker.py registers "
        "it again to read the request, and would fail")


def test_a_served_connection_returns_through_finish_request(worker, pair):
    conn = _connection(pair[0])
    conn.init()
    worker.poller = selectors.DefaultSelector()
    worker.enqueue_req = mock.Mock()
    kept_alive = futures.Future()
    kept_alive.set_result(True)

    conn.parser.unreader.unread(REQUEST)  # read ahead of the request just served
    worker.finish_request(conn, kept_alive)
    assert worker.enqueue_req.call_args_list == [mock.call(conn)], (
        f"ThreadWorker.finish_request no longer hands read-ahead bytes to enqueue_req: {SLOW_CLIENTS} is lost "
        "for pipelined requests")

    conn.parser.unreader.take_buffered()
    worker.finish_request(conn, kept_alive)
    key = worker.poller.get_key(conn.sock)
    assert key.data.func == worker.on_client_socket_readable, (
        "ThreadWorker.finish_request no longer waits for a kept-alive connection's next request in the poller "
        f"with on_client_socket_readable: {SLOW_CLIENTS} is lost on kept-alive connections")
    worker.poller.unregister(conn.sock)
    worker.keepalived_conns.clear()

    worker.nr_conns = 1
    closed = futures.Future()
    closed.set_result(False)
    worker.finish_request(conn, closed)
    assert worker.nr_conns == 0 and conn.sock.fileno() == -1, (
        "ThreadWorker.finish_request no longer closes a connection and counts it out of nr_conns: "
        "http_worker.py's own count of the connections it closes would be off")


def _app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]


def _answer(client_end) -> bytes:
    """What the server wrote, up to the end of a two-byte body."""
    answer = b""
    while HEAD_END not in answer or len(answer) < answer.index(HEAD_END) + len(HEAD_END) + 2:
        received = client_end.recv(65536)
        if not received:
            break
        answer += received
    return answer


def test_a_request_the_event_loop_read_is_served_from_the_parser_without_waiting_on_the_socket(worker, pair):
    from shared_adapters.http_worker import _DeadlineUnreader

    conn = _connection(pair[0])
    for name in ("sock", "client", "parser", "initialized"):
        assert hasattr(conn, name), f"TConn has no {name} any more: {SLOW_CLIENTS} is lost"
    assert conn.parser is None and not conn.initialized
    conn.init()
    assert conn.initialized and isinstance(conn.parser.unreader, unreader.SocketUnreader), (
        "TConn.init no longer gives a plain HTTP/1.1 connection a parser reading through a SocketUnreader "
        "(parser.unreader): http_worker.py could not hand it the request read in the event loop")
    assert conn.parser.unreader.sock is conn.sock, "SocketUnreader.sock is not the connection's socket any more"
    # What GuardedThreadWorker.serve does; the request is already read, nothing more arrives on the socket.
    conn.parser.unreader = _DeadlineUnreader(conn.sock)
    conn.parser.unreader.deadline = time.monotonic() + 5
    conn.parser.unreader.unread(REQUEST)
    conn.wait_for_data = mock.Mock(side_effect=AssertionError("waited on the socket"))
    worker.wsgi = _app
    kept_alive = worker.handle(conn)
    assert not conn.wait_for_data.called, (
        "ThreadWorker.handle waits for the socket to be readable even on an initialised connection: "
        "a request read whole in the event loop would stall for 5 s and be deferred")
    answer = _answer(pair[1])
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and answer.endswith(b"\r\n\r\nok"), (
        f"ThreadWorker.handle did not serve the request from the parser's replaced unreader ({answer!r}): "
        f"{SLOW_CLIENTS} is lost")
    assert kept_alive is True, "ThreadWorker.handle no longer returns True for a connection to keep alive"


def test_a_request_gunicorn_cannot_parse_goes_to_handle_error_with_the_socket_and_address(worker, pair):
    conn = _connection(pair[0])
    conn.init()
    conn.parser.unreader.unread(b"NOT HTTP" + HEAD_END)
    worker.handle_error = mock.Mock()
    kept_alive = worker.handle(conn)
    assert worker.handle_error.call_count == 1, (
        "ThreadWorker.handle no longer calls handle_error for what it cannot parse: http_worker.py would lose "
        "its JSON error answers")
    _, client, addr, exc = worker.handle_error.call_args.args
    assert client is conn.sock and addr == conn.client and isinstance(exc, http_errors.ParseException), (
        "ThreadWorker.handle no longer calls handle_error(req, socket, client address, ParseException): "
        "http_worker.py would answer on the wrong socket or with the wrong status")
    assert kept_alive is False, "ThreadWorker.handle keeps a connection open after a request it could not parse"


def _calls_in_loops_while_alive(function) -> set[str]:
    """The names of the methods of self that `function` calls inside its `while self.alive:` loops."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    loops = [node for node in ast.walk(tree) if isinstance(node, ast.While) and ast.unparse(node.test) == "self.alive"]
    return {node.func.attr for loop in loops for node in ast.walk(loop)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name) and node.func.value.id == "self"}


def test_the_event_loop_calls_murder_pending_while_the_worker_runs():
    assert "murder_pending" in _calls_in_loops_while_alive(gthread.ThreadWorker.run), (
        "ThreadWorker.run no longer calls self.murder_pending() in its `while self.alive:` loop: http_worker.py "
        "would lose the 408 to requests not whole by their deadline, so slow clients would hold connections")


def test_the_unreader_reads_through_chunk_and_gives_back_what_it_holds(pair):
    from shared_adapters.http_worker import _DeadlineUnreader

    reader = _DeadlineUnreader(pair[0])
    reader.unread(b"abc")
    assert reader.take_buffered() == b"abc" and reader.take_buffered() == b"", (
        "Unreader.take_buffered no longer hands over (and empties) what is buffered: the start of a pipelined "
        "request would be lost on a kept-alive connection")
    reader.unread(b"abc")
    assert reader.read() == b"abc", "Unreader.read no longer returns unread bytes first: the request would be lost"
    pair[1].sendall(b"body")
    reader.deadline = time.monotonic() + 5
    assert reader.read() == b"body", "SocketUnreader.chunk no longer reads from self.sock"
    assert pair[0].gettimeout() is None, "a read left the socket with a timeout"
    reader.deadline = time.monotonic() - 1
    try:
        reader.read()
    except socket.timeout:
        pass
    else:
        pytest.fail("Unreader.read no longer reads through chunk(): http_worker.py would lose the deadline (408) "
                    "on a body left for a thread to read")


def test_the_configuration_the_worker_checks_is_there(worker):
    cfg = Config()
    for name, loss in [("is_ssl", "refusing TLS, whose handshake a thread would do"),
                       ("http2_cleartext", "refusing cleartext HTTP/2, whose preface a thread would read")]:
        assert hasattr(cfg, name), f"gunicorn's Config has no {name} any more: http_worker.py would lose {loss}"
    assert not cfg.is_ssl and cfg.http2_cleartext == "off", (
        "gunicorn's defaults are no longer plain HTTP/1.1: http_worker.py would refuse to start")
    type(worker).check_config(cfg, mock.Mock())
    cfg.set("http2_cleartext", "prior-knowledge")
    try:
        type(worker).check_config(cfg, mock.Mock())
    except RuntimeError:
        pass
    else:
        pytest.fail("check_config accepted cleartext HTTP/2: gunicorn's Config.http2_cleartext no longer holds "
                    "the setting, and http_worker.py would let a thread read an HTTP/2 preface")


def test_write_nonblock_writes_to_a_blocking_socket(pair):
    util.write_nonblock(pair[0], b"answer")
    assert pair[1].recv(16) == b"answer", (
        "gunicorn.util.write_nonblock no longer writes to a blocking socket: http_worker.py would lose "
        "its JSON error answers")


class _CountingSocket(socket.socket):
    """A real socket that counts the timeouts set on it (each a system call)."""

    __slots__ = ("timeouts_set",)

    def settimeout(self, value):
        self.timeouts_set += 1
        super().settimeout(value)


def _reading_app(read: bool):
    """An app that answers 'ok', having read the request's body or not."""
    def app(environ, start_response):
        if read:
            environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return [b"ok"]
    return app


@pytest.mark.parametrize("read", [True, False], ids=["body read by the app", "body left unread"])
def test_a_connection_is_kept_alive_after_a_body_and_serves_the_next_request(worker, pair, read):
    from shared_adapters.http_worker import _DeadlineUnreader

    sock = _CountingSocket(fileno=pair[0].detach())
    sock.timeouts_set = 0
    conn = _connection(sock)
    conn.init()
    conn.parser.unreader = _DeadlineUnreader(conn.sock)
    conn.parser.unreader.deadline = time.monotonic() + 5
    body = b"x" * 3000
    following = b"GET /next HTTP/1.1\r\nHost: x" + HEAD_END
    conn.parser.unreader.unread(b"POST /send HTTP/1.1\r\nHost: x\r\nContent-Length: 3000" + HEAD_END + body + following)
    worker.wsgi = _reading_app(read)
    try:
        assert worker.handle(conn) is True, "the connection was not kept alive after a request with a body"
        assert _answer(pair[1]).endswith(b"\r\n\r\nok")
        if read:
            assert sock.timeouts_set == 0, (
                f"the socket's timeout was set {sock.timeouts_set} times although the app read the whole body")
        # The next request on the connection is the one after the body, whether the app read the body or not.
        assert worker.handle(conn) is True and _answer(pair[1]).endswith(b"\r\n\r\nok")
        assert conn.parser.mesg.path == "/next", f"the next request read was {conn.parser.mesg.path!r}"
    finally:
        sock.close()
