"""The gunicorn worker: gthread, except that gunicorn's own errors are the API's JSON, not HTML."""

import json
from http import HTTPStatus

from gunicorn import util
from gunicorn.http import errors as http_errors
from gunicorn.http import wsgi
from gunicorn.workers.gthread import ThreadWorker

from .app import PROTECTIVE_HEADERS
from .errors import error_body

HEAD_END = b"\r\n\r\n"

# What gunicorn could not parse, most specific first; any other parse error is a 400.
_CLIENT_ERRORS = (
    (http_errors.LimitRequestLine, 414, "request_uri_too_large", "the request line is too long"),
    (http_errors.LimitRequestHeaders, 431, "request_header_fields_too_large",
     "the request has too many or too large header fields"),
    (http_errors.ExpectationFailed, 417, "expectation_failed", "only 'Expect: 100-continue' is supported"),
    (http_errors.ForbiddenProxyRequest, 403, "forbidden", "the request is forbidden"),
    (http_errors.UnsupportedTransferCoding, 400, "bad_request", "only the chunked transfer coding is supported"),
)


def error_answer(status: int, code: str, message: str) -> bytes:
    """A whole HTTP/1.1 answer carrying the API's JSON error; the connection closes after it."""
    body = json.dumps(error_body(code, message), separators=(",", ":")).encode()
    head = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}", "Connection: close", "Content-Type: application/json",
            f"Content-Length: {len(body)}", *(f"{name}: {value}" for name, value in PROTECTIVE_HEADERS.items())]
    return "\r\n".join(head).encode("latin-1") + HEAD_END + body


def _error_of(exc: BaseException) -> tuple[int, str, str]:
    """Status, code and message for an exception gunicorn met while reading or serving a request."""
    server_fault = (http_errors.InvalidResponseHeader, http_errors.InvalidResponseHeaderName)
    if isinstance(exc, server_fault) or not isinstance(exc, http_errors.ParseException):
        return 500, "internal_error", "the server failed to handle the request"
    for kind, status, code, message in _CLIENT_ERRORS:
        if isinstance(exc, kind):
            return status, code, message
    return 400, "bad_request", "the request is not valid HTTP/1.1"


class GuardedThreadWorker(ThreadWorker):
    """A gthread worker whose own errors are the API's JSON."""

    def init_process(self):
        """Give responses a Server header that does not name the software."""
        # gunicorn has no setting for it: each Response copies this module global.
        wsgi.SERVER = "api"
        super().init_process()

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

