"""The gunicorn worker: threads get only whole requests, and gunicorn's own errors are JSON.

gunicorn's gthread worker hands a connection to a thread as soon as any byte arrives, so a
client trickling its request holds a thread for as long as it likes. This worker's event loop
reads each request first (its head, and a body of up to `max_body_bytes`) and answers 408 when
that takes longer than `read_timeout_s`; a body left for the thread to read (streamed, or after
`Expect: 100-continue`) must arrive by the same deadline. Requests that open a stream, named by the
app (`stream_request_starts`), are served by threads of their own. A view that answers once an outcome is
known (deferred_answers) frees its thread at once: the worker writes the answer when the outcome is done.
"""

import json
import re
import selectors
import socket
import threading
import time
from concurrent import futures
from dataclasses import dataclass, field
from collections.abc import Callable, Iterable
from datetime import timedelta
from functools import lru_cache, partial
from http import HTTPStatus
from types import SimpleNamespace

from gunicorn import util
from gunicorn.http import errors as http_errors
from gunicorn.http import wsgi
from gunicorn.http.body import LengthReader
from gunicorn.http.unreader import SocketUnreader
from gunicorn.workers.gthread import TConn, ThreadWorker

from .deferred_answers import ANSWERS_LATER, DEFERRED, Deferred
from .errors import INTERNAL_ERROR, error_body
from .flask_app import PROTECTIVE_HEADERS

COMPLETE, INCOMPLETE, HEAD_TOO_LARGE = "complete", "incomplete", "head too large"
HEAD_END = b"\r\n\r\n"
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d{1,18})[ \t]*\r\n", re.IGNORECASE)
_TRANSFER_ENCODING = re.compile(rb"\r\ntransfer-encoding:", re.IGNORECASE)
_EXPECT = re.compile(rb"\r\nexpect:", re.IGNORECASE)
# An app may name, on its `extensions`, what ends its long-lived responses when the worker is told to stop.
END_STREAMS = "end_streams"

# What gunicorn could not parse, most specific first; any other parse error is a 400.
_CLIENT_ERRORS = (
    (http_errors.LimitRequestLine, 414, "request_uri_too_large", "the request line is too long"),
    (http_errors.LimitRequestHeaders, 431, "request_header_fields_too_large",
     "the request has too many or too large header fields"),
    (http_errors.ExpectationFailed, 417, "expectation_failed", "only 'Expect: 100-continue' is supported"),
    (http_errors.ForbiddenProxyRequest, 403, "forbidden", "the request is forbidden"),
    (http_errors.UnsupportedTransferCoding, 400, "bad_request", "only the chunked transfer coding is supported"),
)


def arrival(received: bytes, max_head: int, max_body: int) -> str:
    """COMPLETE once a thread can serve the request without waiting on the client; INCOMPLETE or HEAD_TOO_LARGE."""
    end = received.find(HEAD_END, 0, max_head + len(HEAD_END))
    if end < 0:
        if len(received) > max_head:
            return HEAD_TOO_LARGE
        # gunicorn refuses a bare LF on sight, so such a head is judged now rather than awaited.
        return COMPLETE if received.count(b"\n") != received.count(b"\r\n") else INCOMPLETE
    head, body = received[:end + 2], received[end + len(HEAD_END):]
    return COMPLETE if _body_arrived(head, body, max_body) else INCOMPLETE


def _body_arrived(head: bytes, body: bytes, max_body: int) -> bool:
    """Whether the body is all here, or is not to be awaited here (too large, or sent after '100 Continue')."""
    if len(body) >= max_body or _EXPECT.search(head):
        return True
    length = _CONTENT_LENGTH.search(head)
    if length:
        return int(length[1]) > max_body or len(body) >= int(length[1])
    if _TRANSFER_ENCODING.search(head):
        return body.endswith(HEAD_END)  # a chunked body ends with an empty line, trailers or not
    return True


def stream_request_starts(method: str, paths: Iterable[str]) -> tuple[bytes, ...]:
    """How the request lines of `method` on each of `paths` (with or without a query) start, for the worker.

    A request opens a stream when it starts with one of them: a prefix check, in time bounded by the
    prefixes whatever the client sends.
    """
    return tuple(f"{method} {path}{after}".encode("ascii") for path in paths for after in (" ", "?"))


def error_answer(status: int, code: str, message: str) -> bytes:
    """A whole HTTP/1.1 answer carrying the API's JSON error; the connection closes after it."""
    body = json.dumps(error_body(code, message), separators=(",", ":")).encode()
    return _http_answer("HTTP/1.1", status, [("Connection", "close"), ("Content-Type", "application/json"),
                                             ("Content-Length", str(len(body))), *PROTECTIVE_HEADERS.items()], body)


def _http_answer(version: str, status: int, headers: list[tuple[str, str]], body: bytes) -> bytes:
    """The bytes of a whole answer: status line, headers and body."""
    head = [f"{version} {status} {HTTPStatus(status).phrase}", *(f"{name}: {value}" for name, value in headers)]
    return "\r\n".join(head).encode("latin-1") + HEAD_END + body


def http_date() -> str:
    """The Date header's value now, as gunicorn writes it, formatted once a second."""
    return _http_date_of(int(time.time()))


@lru_cache(maxsize=1)  # formatting the date costs more than the rest of an answer's head
def _http_date_of(second: int) -> str:
    return util.http_date(second)


def _error_of(exc: BaseException) -> tuple[int, str, str]:
    """Status, code and message for an exception gunicorn met while reading or serving a request."""
    server_fault = (http_errors.InvalidResponseHeader, http_errors.InvalidResponseHeaderName)
    if isinstance(exc, server_fault) or not isinstance(exc, http_errors.ParseException):
        return 500, *INTERNAL_ERROR
    for kind, status, code, message in _CLIENT_ERRORS:
        if isinstance(exc, kind):
            return status, code, message
    return 400, "bad_request", "the request is not valid HTTP/1.1"


def send_now_or_later(sock: socket.socket, data: bytes, submit: Callable, then: Callable[[bool], None]) -> None:
    """Send `data` on this thread if the socket takes it all without waiting (a small answer to a client that
    reads); else send the rest from `submit` (a pool's), which may wait on the client. `then(whether all was sent)`."""
    try:
        sent = sock.send(data, socket.MSG_DONTWAIT)
    except (BlockingIOError, InterruptedError):
        sent = 0
    except OSError:
        then(False)
        return
    if sent == len(data):
        then(True)
        return

    def send_rest():
        try:
            util.write(sock, data[sent:])
        except OSError:
            then(False)
        else:
            then(True)

    try:
        submit(send_rest)
    except RuntimeError:  # the pool is shut down: the worker is exiting past its graceful timeout
        then(False)


# What a thread that served a request returns when its answer is written later (handle_now_or_later).
_ANSWERED_LATER = object()


class _Finished:
    """A request's handling, done: what gunicorn's finish_request reads of a future (whether to keep the connection)."""

    def __init__(self, keep_alive: bool):
        self._keep_alive = keep_alive

    def cancelled(self) -> bool:
        """Never: the answer was written, or failed to be."""
        return False

    def result(self) -> bool:
        """Whether the connection may serve another request."""
        return self._keep_alive


class _DeadlineUnreader(SocketUnreader):
    """Reads what a thread still needs of a request (a streamed body) no later than the request's deadline."""

    deadline = float("inf")

    def chunk(self, size_hint=None):
        """One read from the socket, given up with socket.timeout at the deadline."""
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("the request was not received in time")
        self.sock.settimeout(remaining)
        try:
            return super().chunk(size_hint)
        finally:
            self.sock.settimeout(None)


class _AnswerLater(Exception):
    """Raised through gunicorn by the app's wrapper when a view deferred its answer: the request is not answered yet."""

    def __init__(self, deferred: Deferred, environ: dict):
        super().__init__("the answer is written once its outcome is known")
        self.deferred, self.environ = deferred, environ


class _AnsweringLater:
    """The WSGI app, told that its answers may come later, and raising _AnswerLater for one that will."""

    def __init__(self, app):
        self.app = app

    def __getattr__(self, name):
        return getattr(self.app, name)  # the app's `extensions` and the like

    def __call__(self, environ, start_response):
        environ[ANSWERS_LATER] = True

        def start(status, headers, exc_info=None):
            deferred = environ.get(DEFERRED)
            if deferred is None:
                return start_response(status, headers, exc_info)
            deferred.headers = headers  # the app's hooks ran on the placeholder: its headers are the answer's
            return lambda _data: None

        answer = self.app(environ, start)
        if environ.get(DEFERRED) is None:
            return answer
        if hasattr(answer, "close"):
            answer.close()
        raise _AnswerLater(environ[DEFERRED], environ)


@dataclass
class _Arriving:
    """A request the event loop is reading: the bytes so far and when they must be complete."""

    deadline: float
    received: bytearray = field(default_factory=bytearray)


class GuardedThreadWorker(ThreadWorker):
    """A gthread worker whose threads get only whole requests and whose own errors are the API's JSON."""

    read_timeout_s = 10.0
    stream_threads = 1000
    stream_starts: tuple[bytes, ...] = ()  # how requests that open a stream start: see stream_request_starts()
    max_head_bytes = 64 * 1024
    max_body_bytes = 64 * 1024

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.arriving: dict[TConn, _Arriving] = {}  # in arrival order, so by deadline
        # Requests whose view returned without answering, by socket, until their thread is done with them: the
        # request, what answers it, and whether its body was drained (so the connection may serve another).
        self.answering_later: dict[socket.socket, tuple[object, _AnswerLater, bool]] = {}

    @classmethod
    def check_config(cls, cfg, log):
        """Refuse TLS and cleartext HTTP/2, which would need their bytes read by a thread."""
        super().check_config(cfg, log)
        if cfg.is_ssl or cfg.http2_cleartext != "off":
            raise RuntimeError(f"{cls.__name__} serves plain HTTP/1.1: terminate TLS and HTTP/2 in front of it")

    def init_process(self):
        """Give responses a Server header that does not name the software; make the streams' threads."""
        # gunicorn has no setting for it: each Response copies this module global.
        wsgi.SERVER = "api"
        self.stream_pool = futures.ThreadPoolExecutor(max_workers=self.stream_threads, thread_name_prefix="stream")
        super().init_process()

    def load_wsgi(self):
        """The app, told that this worker can answer a request once the view's outcome is known."""
        super().load_wsgi()
        self.wsgi = _AnsweringLater(self.wsgi)

    def handle_exit(self, sig, frame):
        """On SIGTERM, end the open streams too, so that graceful shutdown does not wait on them."""
        super().handle_exit(sig, frame)
        end_streams = getattr(self.wsgi, "extensions", {}).get(END_STREAMS)
        if end_streams is not None:
            # Not here: a second SIGTERM (the master's, after the group's) would interrupt this very
            # handler while it holds the hub's lock, and wait on that lock forever.
            threading.Thread(target=end_streams, name="end-streams", daemon=True).start()

    def enqueue_req(self, conn):
        """Read the connection's next request in the event loop; a thread gets it once it is whole."""
        arriving = self.arriving[conn] = _Arriving(time.monotonic() + self.read_timeout_s)
        if conn.parser is not None:  # the previous request's read may have taken in the start of this one
            arriving.received += conn.parser.unreader.take_buffered()
        conn.sock.setblocking(False)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self.on_request_bytes, conn))
        self.check_arrival(conn)

    def on_request_bytes(self, conn, _sock):
        """Take what the client sent so far."""
        try:
            data = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.stop_reading(conn)
            self.nr_conns -= 1
            conn.close()
            return
        self.arriving[conn].received += data
        self.check_arrival(conn)

    def check_arrival(self, conn):
        """Hand a whole request to a thread; refuse a head that outgrows its limit."""
        state = arrival(self.arriving[conn].received, self.max_head_bytes, self.max_body_bytes)
        if state == COMPLETE:
            self.serve(conn)
        elif state == HEAD_TOO_LARGE:
            self.refuse(conn, 431, "request_header_fields_too_large",
                        f"the request head is larger than {self.max_head_bytes} bytes")

    def serve(self, conn):
        """Give the request's bytes to the connection's parser and the connection to a thread.

        A stream holds its thread for as long as it is open, so streams get threads of their own
        and never starve ordinary requests.
        """
        arriving = self.stop_reading(conn)
        conn.init()  # a plain HTTP/1.1 connection only gets its parser here
        if not isinstance(conn.parser.unreader, _DeadlineUnreader):
            conn.parser.unreader = _DeadlineUnreader(conn.sock)
        conn.parser.unreader.deadline = arriving.deadline
        conn.parser.unreader.unread(bytes(arriving.received))
        pool = self.stream_pool if arriving.received.startswith(self.stream_starts) else self.tpool
        handled = pool.submit(self.handle_now_or_later, conn)
        handled.add_done_callback(partial(self.handled, conn))

    def handle_now_or_later(self, conn):
        """Serve the request on this thread; one whose answer is deferred gets it written once its outcome is done,
        by whichever thread learns it, and needs nothing more of the main loop until then."""
        result = self.handle(conn)
        later = self.answering_later.pop(conn.sock, None)  # put there by handle_request, on this thread
        if later is None:
            return result
        req, answer_later, drained = later
        # The connection stays counted (nr_conns) until answered, so a graceful stop waits for it.
        answer_later.deferred.when_done(partial(self._answer, conn, req, answer_later, drained))
        return _ANSWERED_LATER

    def handled(self, conn, done):
        """Have the main loop keep or close the connection of a request answered now."""
        if done.cancelled() or done.exception() is not None or done.result() is not _ANSWERED_LATER:
            self.method_queue.defer(self.finish_request, conn, done)

    def refuse(self, conn, status: int, code: str, message: str):
        """Answer a request still arriving with a JSON error and close its connection."""
        self.log.warning("Refused request from ip=%s: %s", (conn.client or ("",))[0], message)
        self.stop_reading(conn)
        self.send_error(conn.sock, status, code, message)
        self.nr_conns -= 1
        conn.close()

    def stop_reading(self, conn) -> _Arriving:
        """Take a connection out of the event loop's reading."""
        self.poller.unregister(conn.sock)
        return self.arriving.pop(conn)

    def murder_pending(self):
        """Besides gunicorn's pending connections, answer 408 to requests not whole by their deadline."""
        super().murder_pending()
        now = time.monotonic()
        while self.arriving:
            conn, arriving = next(iter(self.arriving.items()))
            if arriving.deadline > now:
                break
            self.refuse(conn, 408, "request_timeout", f"the request was not received within {self.read_timeout_s:g} s")

    def handle_request(self, req, conn):
        """As gunicorn does; a request whose answer is deferred has its unread body drained now, on its own thread,
        and waits for its outcome without one (handle_now_or_later)."""
        try:
            return super().handle_request(req, conn)
        except _AnswerLater as later:
            self.answering_later[conn.sock] = (req, later, self._keepalive_after(conn, True))
            return False

    def _keepalive_after(self, conn, keepalive):
        """Whether the connection may serve another request: at once when the app read the whole body, as gunicorn
        judges it otherwise (draining what the app left unread, for a bounded time).

        gunicorn's drain sets the socket's timeout and puts it back even when nothing is left: two system calls a
        request, each letting go of the interpreter lock and waiting to take it back behind the busy threads.
        """
        body = getattr(conn.parser.mesg, "body", None) if keepalive else None
        if body is not None and not body.failed and isinstance(body.reader, LengthReader) and body.reader.length == 0:
            return True
        return super()._keepalive_after(conn, keepalive)

    def _answer(self, conn, req, later: _AnswerLater, drained: bool):
        """Write a deferred answer from the thread that learned its outcome, then have the main loop keep or close
        the connection; an answer the socket does not take at once is written on a pool thread instead."""
        keep_alive = (drained and self.alive and self.cfg.keepalive and not req.should_close()
                      and len(self.keepalived_conns) < self.max_keepalived)
        try:
            status, headers, body = later.deferred.answer()
            connection = [("Server", wsgi.SERVER), ("Date", http_date()),
                          ("Connection", "keep-alive" if keep_alive else "close")]
            answer = _http_answer(f"HTTP/{req.version[0]}.{req.version[1]}", status, connection + headers, body)
        except Exception:  # as gunicorn answers a view that fails: a 500, and the connection closes
            self.log.exception("Error handling request")
            status, headers, keep_alive = 500, [], False
            body = answer = error_answer(500, *INTERNAL_ERROR)

        def written(complete: bool):
            self.log.access(SimpleNamespace(status=f"{status} {HTTPStatus(status).phrase}", sent=len(body), headers=headers),
                            req, later.environ, timedelta(seconds=time.perf_counter() - later.deferred.started))
            self.method_queue.defer(self.finish_request, conn, _Finished(complete and keep_alive))

        send_now_or_later(conn.sock, answer, self.tpool.submit, written)

    def handle_error(self, req, client, addr, exc):
        """Answer what gunicorn could not parse or serve with the API's JSON error instead of HTML."""
        status, code, message = _error_of(exc)
        if status < 500:
            self.log.warning("Invalid request from ip=%s: %s", (addr or ("",))[0], exc)
        else:
            self.log.exception("Error handling request")
        self.send_error(client, status, code, message)

    def send_error(self, sock, status: int, code: str, message: str):
        """Write a JSON error answer without waiting on the client."""
        try:
            util.write_nonblock(sock, error_answer(status, code, message))
        except OSError:
            self.log.debug("Failed to send error message.")


def guarded_worker(read_timeout_s: float, max_body_bytes: int, stream_threads: int = 1000,
                   stream_requests: tuple[bytes, ...] = ()) -> type[GuardedThreadWorker]:
    """The worker class with these limits (gunicorn takes a class and makes the workers itself).

    `stream_requests`: how the requests that open a stream start (stream_request_starts()); they get the
    `stream_threads`, apart from the other requests' threads.
    """
    limits = {"read_timeout_s": read_timeout_s, "max_body_bytes": max_body_bytes, "stream_threads": stream_threads,
              "stream_starts": tuple(stream_requests)}
    return type(GuardedThreadWorker.__name__, (GuardedThreadWorker,), limits)
