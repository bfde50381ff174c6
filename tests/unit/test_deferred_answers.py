"""A deferred answer is the answer the view would have given at once: same status, body and headers, counted once."""

from concurrent.futures import Future

import pytest

from shared_adapters.access import Access
from shared_adapters.deferred_answers import ANSWERS_LATER, DEFERRED, answer_when
from shared_adapters.flask_app import api_app
from shared_adapters.metrics import REQUESTS


def render(value):
    """A view's answer of an outcome: 503 with Retry-After for None, else 202 naming it."""
    if value is None:
        return {"error": "broker_unavailable", "message": "later", "details": {}}, 503, {"Retry-After": "5"}
    return {"status": "accepted", "value": value, "text": "é ✓"}, 202, {}


@pytest.fixture
def app():
    """An app with one view answering when its outcome is set, the outcome kept for the test."""
    app = api_app(__name__, Access(None, None, None, "session", enabled=False), max_body_bytes=1024)
    app.outcome = Future()

    @app.post("/deferred")
    def deferred():
        return answer_when(app.outcome, render)

    inner, app.environs = app.wsgi_app, []

    def recording(environ, start_response):
        app.environs.append(environ)  # where the view leaves a deferred answer, for the worker
        return inner(environ, start_response)

    app.wsgi_app = recording
    return app


def counted(status: int) -> float:
    """How many answers the metrics counted for the view with `status`."""
    return REQUESTS.labels("/deferred", "POST", str(status))._value.get()


@pytest.mark.parametrize("value, status", [(None, 503), (7, 202)])
def test_the_deferred_answer_equals_the_answer_given_at_once(app, value, status):
    at_once = Future()
    at_once.set_result(value)
    app.outcome = at_once
    direct = app.test_client().post("/deferred", headers={"X-Request-Id": "trace-1"})

    app.outcome = Future()
    environ = {ANSWERS_LATER: True}
    before = counted(status)
    placeholder = app.test_client().post("/deferred", headers={"X-Request-Id": "trace-1"}, environ_overrides=environ)
    assert counted(status) == before, "the placeholder is not counted"
    deferred = app.environs[-1][DEFERRED]
    deferred.headers = list(placeholder.headers.items())
    app.outcome.set_result(value)
    later_status, later_headers, later_body = deferred.answer()

    assert counted(status) == before + 1
    assert (later_status, later_body) == (direct.status_code, direct.data)
    assert sorted((name, value) for name, value in later_headers) == sorted(direct.headers.items())


def test_a_failed_outcome_is_the_apis_500(app):
    app.test_client().post("/deferred", environ_overrides={ANSWERS_LATER: True})
    app.outcome.set_exception(RuntimeError("lost"))
    status, _headers, body = app.environs[-1][DEFERRED].answer()
    assert status == 500 and b'"internal_error"' in body
