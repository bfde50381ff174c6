"""gunicorn settings and an app whose answers wait for a release: what the guarded worker does with deferred answers.

Run as `gunicorn -c python:tests.support.deferring_app tests.support.deferring_app:app` with one worker of ONE
thread: a held request that kept its thread would leave none for the release.
"""

import threading
from concurrent.futures import Future

from shared_adapters.access import Access
from shared_adapters.deferred_answers import answer_when
from shared_adapters.flask_app import api_app
from shared_adapters.http_worker import guarded_worker

workers, threads = 1, 1
worker_class = guarded_worker(read_timeout_s=5, max_body_bytes=1024)
graceful_timeout = 10

app = api_app(__name__, Access(None, None, None, "session", enabled=False), max_body_bytes=1024)
_held: list[Future] = []
_lock = threading.Lock()


@app.post("/held")
def held():
    """Answered once /release or /fail is called: 201 naming how many were released with it."""
    outcome: Future = Future()
    with _lock:
        _held.append(outcome)
    return answer_when(outcome, lambda count: ({"releasedWith": count}, 201, {"X-Released": "yes"}))


@app.post("/held-unwritable")
def held_unwritable():
    """Held as /held, then rendered into a body JSON cannot write: the worker's own failure to answer."""
    outcome: Future = Future()
    with _lock:
        _held.append(outcome)
    return answer_when(outcome, lambda _count: ({"value": object()}, 201, {}))


@app.get("/held-count")
def held_count():
    """How many requests wait for a release."""
    with _lock:
        return {"held": len(_held)}


@app.post("/release")
def release():
    """Complete every held request's outcome."""
    waiting = _take_held()
    for outcome in waiting:
        outcome.set_result(len(waiting))
    return {"released": len(waiting)}


@app.post("/fail")
def fail():
    """Fail every held request's outcome: each is answered 500, as any view that fails."""
    waiting = _take_held()
    for outcome in waiting:
        outcome.set_exception(RuntimeError("the outcome failed"))
    return {"failed": len(waiting)}


def _take_held() -> list[Future]:
    """The held outcomes, no longer held."""
    with _lock:
        waiting = list(_held)
        _held.clear()
    return waiting
