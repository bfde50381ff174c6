"""POST /send-message's ordinary case, served without Flask's request machinery.

A single send is the request the producer serves most, and Flask's contexts, hooks and response
objects cost it more than its own work does. For a request that is plainly a send (POST to the
path, a bearer token, a JSON body of a declared length within the limit) this WSGI middleware does
what the app's hooks and the view do, with their functions: the trace id, authentication, the JSON
checks, the schema, the rate limit, the publish, the deferred answer, the protective headers and
the request metrics. Any other request goes to Flask as it came. Both ways give the same answers
(tests/unit/test_quick_send.py).
"""

import time

from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.wsgi import get_input_stream

from shared_adapters.access import Access, bearer_caller, of_role
from shared_adapters.bodies import json_document, read_body
from shared_adapters.deferred_answers import ANSWERS_LATER, DEFERRED, Deferred, json_answer
from shared_adapters.errors import ApiError, error_body, http_api_error, internal_error
from shared_adapters.flask_app import PROTECTIVE_HEADERS, trace_id_of
from shared_adapters.logs import current_trace_id
from shared_domain.identity import CLIENT

from .send_api import SEND_PATH, send_one
from .services import Services

# The request metrics' labels of a send, as Flask's route gives them.
LABELS = (SEND_PATH, "POST")


class QuickSend:
    """The app's WSGI callable, serving plain single sends itself and handing every other request to Flask."""

    def __init__(self, flask_wsgi_app, serving: Services, rules: Access):
        self.flask_wsgi_app = flask_wsgi_app
        self.serving, self.rules = serving, rules

    def __call__(self, environ: dict, start_response):
        if not self._plain_send(environ):
            return self.flask_wsgi_app(environ, start_response)
        started = time.perf_counter()
        trace = trace_id_of(environ.get("HTTP_X_REQUEST_ID"))
        token = current_trace_id.set(trace)
        try:
            return self._send(environ, start_response, started, trace)
        finally:
            current_trace_id.reset(token)

    def _plain_send(self, environ: dict) -> bool:
        """Whether the request is a plain send, which this class serves."""
        if environ.get("PATH_INFO") != SEND_PATH or environ.get("REQUEST_METHOD") != "POST":
            return False
        if not self.rules.enabled or "HTTP_AUTHORIZATION" not in environ or "HTTP_TRANSFER_ENCODING" in environ:
            return False
        if environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower() != "application/json":
            return False
        declared = environ.get("CONTENT_LENGTH", "")
        return declared.isascii() and declared.isdigit() and int(declared) <= self.serving.settings.max_body_bytes

    def _send(self, environ: dict, start_response, started: float, trace: str):
        """Authenticate, read, validate, count and publish the send; its answer now, or later as the worker can."""
        headers = [*PROTECTIVE_HEADERS.items(), ("X-Request-Id", trace)]
        try:
            caller, _ = bearer_caller(environ["HTTP_AUTHORIZATION"], self.rules, environ.get("REMOTE_ADDR"))
            of_role(caller, CLIENT)
            # The body read as Flask reads it (werkzeug's stream, up to the declared length and the limit).
            data = read_body(get_input_stream(environ, max_content_length=self.serving.settings.max_body_bytes).read)
            outcomes, render = send_one(json_document(data), self.serving, caller, trace, self.rules)
        except HTTPException as error:  # a body werkzeug stopped reading
            return self._error(start_response, http_api_error(error), headers, started)
        except ApiError as error:
            return self._error(start_response, error, headers, started)
        except Exception:
            return self._error(start_response, internal_error(), headers, started)
        deferred = Deferred(outcomes, render, LABELS, started, trace, headers)
        if environ.get(ANSWERS_LATER) and not outcomes.done():
            environ[DEFERRED] = deferred
            start_response("202 ACCEPTED", headers)  # the worker keeps these headers for the answer it writes later
            return []
        return _written(start_response, *deferred.answer())

    @staticmethod
    def _error(start_response, error: ApiError, headers: list[tuple[str, str]], started: float) -> list[bytes]:
        """Answer an ApiError as the app's error handlers do."""
        return _written(start_response, *json_answer(error_body(error.code, error.message, error.details), error.status,
                                                     error.headers, headers, LABELS, started))


def _written(start_response, status: int, headers: list[tuple[str, str]], content: bytes) -> list[bytes]:
    """Start a WSGI answer with its status line as werkzeug writes it; its body."""
    start_response(f"{status} {HTTP_STATUS_CODES[status].upper()}", headers)
    return [content]
