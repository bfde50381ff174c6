"""The Flask app both services start from: JSON errors, protective headers, and who may call."""

import logging
import sys

from flask import Flask, Response, g, request

from shared_domain.envelope import new_trace_id, usable_trace_id

from . import errors
from .access import EXTENSION, Access
from .logs import current_trace_id
from .metrics import observe_requests
from .pages import assets

# Answers are not to be sniffed into another type, framed, or cached by anyone on the way.
PROTECTIVE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}


# More views and hooks than either app registers; a bound, should anything ask about callables made per request.
REMEMBERED_FUNCTIONS = 1024


class ApiFlask(Flask):
    """Flask, except that its automatic OPTIONS answer has no content instead of an empty HTML page, and that it tells
    a view or hook that is a coroutine from one that is not once, not at each of its calls."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._synchronous: dict = {}

    def ensure_sync(self, func):
        """As Flask's, remembered for the functions the app registered: every request asks it of every hook it runs."""
        try:
            return self._synchronous[func]
        except KeyError:
            synchronous = super().ensure_sync(func)
            if len(self._synchronous) < REMEMBERED_FUNCTIONS:  # what an app registers, never what requests make
                self._synchronous[func] = synchronous
            return synchronous
        except TypeError:  # a callable that cannot be a key
            return super().ensure_sync(func)

    def make_default_options_response(self) -> Response:
        """204 with the Allow header."""
        response = super().make_default_options_response()
        response.status_code = 204
        del response.headers["Content-Type"]
        return response


def api_app(import_name: str, access: Access, max_body_bytes: int) -> Flask:
    """A Flask app answering every error as JSON, with protective headers and `access` deciding who calls."""
    app = ApiFlask(import_name, static_folder=None)  # the pages serve their files from their blueprints
    app.config["MAX_CONTENT_LENGTH"] = max_body_bytes
    app.json.sort_keys = False
    # '//messages' is a path of its own (404), not a redirect to '/messages'.
    app.url_map.merge_slashes = False
    app.extensions[EXTENSION] = access
    errors.init_app(app)
    app.before_request(_start_trace)
    observe_requests(app)
    app.after_request(_protective_headers)
    app.teardown_request(_end_trace)
    app.register_blueprint(assets)
    if not access.enabled:
        _warn_open()
    return app


def _warn_open() -> None:
    """Say loudly that anyone may act as anyone."""
    warning = ("AUTHENTICATION IS OFF (AUTH_ENABLED=false): anyone who reaches this service can send as any "
               "client, read every message and act as an operator; only for trusted networks")
    logging.getLogger(__name__).warning("%s", warning)
    print(f"WARNING: {warning}", file=sys.stderr, flush=True)


def trace_id() -> str:
    """The current request's trace id: the caller's X-Request-Id when it is a sensible one, else a new one."""
    return g.trace_id


def trace_id_of(given: str | None) -> str:
    """A request's trace id: the caller's X-Request-Id (`given`) when it is a sensible one, else a new one."""
    return usable_trace_id(given) or new_trace_id()


def _start_trace() -> None:
    """Give the request its trace id, which every log line written while handling it carries."""
    g.trace_id = trace_id_of(request.headers.get("X-Request-Id"))
    g.trace_token = current_trace_id.set(g.trace_id)


def _end_trace(_error: BaseException | None) -> None:
    """Lines written after the request are no longer about it."""
    token = g.pop("trace_token", None)
    if token is not None:
        current_trace_id.reset(token)


def _protective_headers(response: Response) -> Response:
    """Add the PROTECTIVE_HEADERS a view did not set itself, and the request's trace id."""
    present = {name.lower() for name in response.headers.keys()}
    response.headers.extend([(name, value) for name, value in PROTECTIVE_HEADERS.items() if name.lower() not in present])
    if "trace_id" in g:
        response.headers["X-Request-Id"] = g.trace_id
    return response
