"""Answers written once an outcome is known, with no request thread waiting for it.

A view returns `answer_when(outcome, render)`, where `outcome` is a future and `render` turns its result into the
view's `(body, status, headers)`. Under the guarded gunicorn worker (http_worker), which says so in the WSGI environ,
the view's thread is free at once: the app's hooks run on a placeholder response (so the answer gets the same
protective headers and trace id as any other), and the worker writes the rendered answer when the future is done.
Under any other server, such as Flask's test client, the view waits for the outcome and answers as usual: both
ways give the same answer.
"""

import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from flask import Response, g, request

from .errors import INTERNAL_ERROR, error_body
from .logs import current_trace_id
from .metrics import observe_answer, request_labels

log = logging.getLogger(__name__)

# Set by the worker in the WSGI environ: it can write a request's answer later.
ANSWERS_LATER = "messaging.answers_later"
# Where a view leaves the answer it deferred, for the worker.
DEFERRED = "messaging.deferred_answer"
# What a WSGI app's view answered with: body, status and extra headers.
Answer = tuple[Any, int, dict[str, str]]
_INTERNAL_ERROR = (error_body(*INTERNAL_ERROR), 500, {})


class Deferred:
    """An answer to write once `outcome` is done: rendered then, with the headers the app gave its placeholder."""

    def __init__(self, outcome: Future, render: Callable[[Any], Answer], labels: tuple[str, str], started: float,
                 trace_id: str | None, headers: list[tuple[str, str]] | None = None):
        self.outcome, self.render = outcome, render
        self.headers = headers or []  # the placeholder's, set as the app answers it
        self._labels, self._trace_id = labels, trace_id
        self.started = started  # perf_counter, as the request metrics time it

    def when_done(self, callback: Callable[[], None]) -> None:
        """Call `callback` once the outcome is known, on the thread that learns it (at once if it is known)."""
        self.outcome.add_done_callback(lambda _done: callback())

    def answer(self) -> tuple[int, list[tuple[str, str]], bytes]:
        """The status, headers and body to write, the request counted and timed as the app counts every answer."""
        token = current_trace_id.set(self._trace_id)
        try:
            body, status, extra = rendered(self.outcome, self.render)
        finally:
            current_trace_id.reset(token)
        return json_answer(body, status, extra, self.headers, self._labels, self.started)


def json_answer(body: Any, status: int, extra: dict[str, str], headers: list[tuple[str, str]], labels: tuple[str, str],
                started: float) -> tuple[int, list[tuple[str, str]], bytes]:
    """The status, `headers` with the JSON body's type and length and `extra`, and the body, as Flask writes a view's
    JSON answer; the request counted and timed."""
    content = (json.dumps(body, separators=(",", ":")) + "\n").encode()  # as Flask's JSON answers are written
    headers = [(name, value) for name, value in headers if name.lower() not in ("content-type", "content-length")]
    headers += [("Content-Type", "application/json"), ("Content-Length", str(len(content))), *extra.items()]
    observe_answer(*labels, status, started)
    return status, headers, content


def answer_when(outcome: Future, render: Callable[[Any], Answer]) -> Response | Answer:
    """The view's answer: `render(outcome's result)`, written when the outcome is done.

    Under a server that answers later, a placeholder the worker replaces; elsewhere, the answer once the outcome is
    known (waited for here).
    """
    if not request.environ.get(ANSWERS_LATER) or outcome.done():
        return rendered(outcome, render)
    request.environ[DEFERRED] = Deferred(outcome, render, request_labels(), g.get("started", time.perf_counter()),
                                         g.get("trace_id"))
    # Its type named: werkzeug otherwise looks for one in the empty headers, by raising and catching a KeyError.
    placeholder = Response(status=202, mimetype="application/json")
    placeholder.answered_later = True  # counted when answered, not now (metrics.observe_requests)
    return placeholder


def rendered(outcome: Future, render: Callable[[Any], Answer]) -> Answer:
    """What `render` makes of the outcome; a 500 when either fails, as any view's failure is answered."""
    try:
        return render(outcome.result())
    except Exception:
        log.exception("unhandled error")
        return _INTERNAL_ERROR
