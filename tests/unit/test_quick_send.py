"""POST /send-message answers the same whether QuickSend serves it or Flask does: status, headers, body, what is
published and what is counted against the caller."""

import io
import json
from concurrent.futures import Future

import mongomock
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from werkzeug.test import EnvironBuilder

from producer_service.application.ports import Receipt
from producer_service.config import ProducerSettings
from producer_service.entrypoints.quick_send import QuickSend
from shared_adapters.deferred_answers import ANSWERS_LATER, DEFERRED
from shared_adapters.metrics import REQUESTS
from shared_adapters.mongo_identities import MongoIdentityRegistry
from shared_domain.envelope import usable_trace_id
from shared_domain.identity import CLIENT, OPERATOR
from tests.unit.conftest import FakePublisher, make_app
from tests.unit.strategies import ANY_TEXT, JSON_VALUES, VALID_TEXT

OPERATOR_TOKEN = "s3cret-operator-token-of-32-chars-or-more"
# Low limits, so that generated runs of requests reach the rate limit and the failed-authentication limit.
SETTINGS = ProducerSettings(max_body_bytes=2048, max_message_length=100, operator_token=OPERATOR_TOKEN,
                            send_rate_limit=6, auth_failure_limit=3)
PRINTABLE = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)


class Twins:
    """Two producer apps with the same clients and tokens on stores of their own: one with QuickSend, one without."""

    def __init__(self):
        seed = mongomock.MongoClient(tz_aware=True)["messaging"]
        registry = MongoIdentityRegistry(seed)
        self.tokens = {}
        for role, name in [(CLIENT, "clientA"), (CLIENT, "clientB"), (OPERATOR, "ops")]:
            registry.add(role, name)
            self.tokens[name] = registry.issue_token(role, name)[1]
        self.quick, self.quick_publisher = self._app(seed)
        self.flask, self.flask_publisher = self._app(seed)
        assert isinstance(self.flask.wsgi_app, QuickSend)
        self.flask.wsgi_app = self.flask.wsgi_app.flask_wsgi_app

    @staticmethod
    def _app(seed):
        database = mongomock.MongoClient(tz_aware=True)["messaging"]
        for name in seed.list_collection_names():
            database[name].insert_many(list(seed[name].find()))
        publisher = FakePublisher()
        return make_app(publisher, database, {"kafka": True, "mongodb": True}, None, SETTINGS), publisher


@st.composite
def send_requests(draw) -> dict:
    """A POST /send-message as any client may send it: valid or not, authorised or not, whole or not."""
    valid = st.fixed_dictionaries(
        {"to": st.sampled_from(["clientB", "clientA", "nobody"]), "message": VALID_TEXT},
        optional={"from": st.sampled_from(["clientA", "clientB"]),
                  "messageId": st.from_regex(r"[A-Za-z0-9_.:-]{1,20}", fullmatch=True)})
    anything = st.fixed_dictionaries({}, optional={"to": st.one_of(st.just("clientB"), JSON_VALUES),
                                                   "message": st.one_of(ANY_TEXT, JSON_VALUES),
                                                   "messageId": JSON_VALUES, "sentAt": JSON_VALUES})
    body = draw(st.one_of(valid.map(lambda value: json.dumps(value).encode()),
                          valid.map(lambda value: json.dumps(value).encode()),
                          anything.map(lambda value: json.dumps(value).encode()),
                          JSON_VALUES.map(lambda value: json.dumps(value).encode()),
                          st.binary(max_size=60), st.just(b'{"to": "clientB", "message": "' + b"x" * 3000 + b'"}')))
    headers = draw(st.fixed_dictionaries({}, optional={
        "X-Request-Id": st.one_of(PRINTABLE, st.sampled_from(["trace-1", "x" * 300])),
        "Cookie": st.just("chat_session=whatever")}))
    client_token = st.sampled_from(["clientA", "clientB"]).map(lambda name: ("token", name))
    headers["Authorization"] = draw(st.one_of(
        client_token, client_token, client_token, st.sampled_from(["ops", "operator"]).map(lambda name: ("token", name)),
        st.sampled_from(["Bearer", "Bearer unknown-token", "Basic abc", ""]), PRINTABLE.map(lambda text: "Bearer " + text)))
    content_type = draw(st.one_of(st.just("application/json"), st.sampled_from(
        ["application/json; charset=utf-8", "APPLICATION/JSON ", "text/plain", "application/merge-patch+json", None])))
    return {"body": body, "headers": headers, "content_type": content_type,
            "address": draw(st.sampled_from(["10.0.0.1", "10.0.0.2"])),
            "declared": draw(st.one_of(st.none(), st.none(), st.none(), st.sampled_from([0, 5, "more", "unreadable"])))}  # a Content-Length other than the body's


def _environ(request: dict, tokens: dict) -> dict:
    """The WSGI environ of a generated request."""
    headers = dict(request["headers"])
    if isinstance(headers["Authorization"], tuple):
        name = headers["Authorization"][1]
        headers["Authorization"] = f"Bearer {OPERATOR_TOKEN if name == 'operator' else tokens[name]}"
    builder = EnvironBuilder(path="/send-message", method="POST", data=request["body"], headers=headers,
                             content_type=request["content_type"], environ_base={"REMOTE_ADDR": request["address"]})
    environ = builder.get_environ()
    environ["wsgi.input_terminated"] = True  # as gunicorn serves: the body's stream ends at its length
    if request["declared"] == "unreadable":  # the server cannot read the body (the client is too slow)
        environ["wsgi.input"] = Unreadable()
    elif request["declared"] == "more":  # a body that ends before its declared length
        environ["CONTENT_LENGTH"] = str(len(request["body"]) + 7)
    elif request["declared"] is not None:
        environ["CONTENT_LENGTH"] = str(request["declared"])
        environ["wsgi.input"] = io.BytesIO(request["body"][:request["declared"]])
    return environ


class Unreadable(io.RawIOBase):
    """A request body the server gives up reading, as gunicorn's worker does at the request's deadline."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        raise TimeoutError("the request was not received in time")


def _answer(app, environ: dict) -> tuple[str, dict, bytes]:
    """Status line, headers and body an app answers a request's environ with."""
    started = []
    body = b"".join(app(environ, lambda status, headers, exc_info=None: started.append((status, headers))))
    [(status, headers)] = started
    return status, dict(headers), body


def _comparable(answer: tuple[str, dict, bytes], trace_given: bool) -> tuple:
    """An answer without what differs by chance: the new message's id and time, a trace id made up for the request."""
    status, headers, body = answer
    headers = {name.lower(): value for name, value in headers.items()}
    if not trace_given:
        headers.pop("x-request-id")
    document = json.loads(body)
    if document.get("status") == "accepted":
        document["messageId"], document["sentAt"] = "?", "?"
    return status, headers, document


@given(requests=st.lists(send_requests(), min_size=1, max_size=12))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_run_of_sends_is_answered_alike_by_quick_send_and_by_flask(requests):
    twins = Twins()
    for request in requests:
        quick = _answer(twins.quick, _environ(request, twins.tokens))
        flask = _answer(twins.flask, _environ(request, twins.tokens))
        trace_given = usable_trace_id(request["headers"].get("X-Request-Id")) is not None
        assert _comparable(quick, trace_given) == _comparable(flask, trace_given), request
        event(quick[0])  # which answers the run reached (pytest --hypothesis-show-statistics)
    assert _published(twins.quick_publisher) == _published(twins.flask_publisher)


def _published(publisher: FakePublisher) -> list[tuple]:
    """Who sent what to whom, in the order published."""
    return [(message.sender, message.recipient, message.text) for message in publisher.published]


def test_a_plain_send_is_served_without_flask_and_published_once():
    twins = Twins()
    flask_calls = []
    inner = twins.quick.wsgi_app.flask_wsgi_app
    twins.quick.wsgi_app.flask_wsgi_app = lambda environ, start: flask_calls.append(environ) or inner(environ, start)
    before = REQUESTS.labels("/send-message", "POST", "202")._value.get()
    response = twins.quick.test_client().post("/send-message", json={"to": "clientB", "message": "hi"},
                                              headers={"Authorization": f"Bearer {twins.tokens['clientA']}",
                                                       "X-Request-Id": "trace-7"},
                                              environ_overrides={"wsgi.input_terminated": True})
    assert response.status_code == 202 and response.headers["X-Request-Id"] == "trace-7"
    assert response.get_json()["partition"] == 0 and flask_calls == []
    assert _published(twins.quick_publisher) == [("clientA", "clientB", "hi")]
    assert REQUESTS.labels("/send-message", "POST", "202")._value.get() == before + 1


class PendingPublisher(FakePublisher):
    """Publishes with an outcome the test completes."""

    def publish(self, messages, trace_id=None):
        self.published += messages
        self.outcome = Future()
        return self.outcome


@pytest.mark.parametrize("serve", ["quick", "flask"])
def test_a_deferred_send_is_answered_as_one_answered_at_once(serve):
    twins = Twins()
    app = twins.quick if serve == "quick" else twins.flask
    publisher = app.extensions["messaging"].publisher = PendingPublisher()
    environ = _environ({"body": b'{"to": "clientB", "message": "later"}', "content_type": "application/json",
                        "headers": {"Authorization": ("token", "clientA"), "X-Request-Id": "trace-9"},
                        "address": "10.0.0.1", "declared": None}, twins.tokens)
    environ[ANSWERS_LATER] = True
    placeholder_status, placeholder_headers, _ = _answer(app, environ)
    deferred = environ[DEFERRED]
    assert placeholder_status.startswith("202") and not deferred.outcome.done()
    deferred.headers = list(placeholder_headers.items())
    publisher.outcome.set_result([Receipt(partition=2, offset=40)])
    status, headers, body = deferred.answer()
    assert status == 202 and dict(headers)["X-Request-Id"] == "trace-9"
    assert {name.lower() for name, _ in headers} == {"x-content-type-options", "cache-control", "content-security-policy",
                                                      "referrer-policy", "x-request-id", "content-type", "content-length"}
    answer = json.loads(body)
    assert (answer["status"], answer["partition"], answer["offset"]) == ("accepted", 2, 40)
