"""Any request on any endpoint of either server is answered 2xx, or 4xx with a JSON error: never 5xx, a redirect
or an HTML error page."""

import base64
import io
import json
from urllib.parse import quote, urlencode

import pytest
from gunicorn.http.errors import InvalidChunkSize
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.test import EnvironBuilder

from shared_domain.json_text import unsafe_strings
from tests.unit.strategies import ANY_TEXT, JSON_VALUES, VALID_CLIENT, envelopes

HOSTILE = settings(max_examples=400, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
PATHS = ["/send-message", "/send-messages", "/messages", "/failed-messages", "/health", "/ready",
         "/failed-messages/replay", "/failed-messages/discard", "/failed-messages/{id}", "/failed-messages/{id}/discard",
         "/stream", "/session", "/conversations", "/conversations/{id}/read", "/failed-message-counts", "/",
         "/assets/common/api.js", "/assets/{id}", "/metrics"]
QUERY_NAMES = st.one_of(st.sampled_from(["to", "from", "since", "until", "limit", "cursor", "status", "errorType",
                                         "client", "after", "with", "order", "reasonContains"]), ANY_TEXT)
QUERY_VALUES = st.one_of(
    ANY_TEXT, VALID_CLIENT, st.integers().map(str), st.sampled_from(["²", "①", "٣", "1e3", "0", "-1", " 5"]),
    st.sampled_from(["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00", "2026-01-01"]),
    st.sampled_from(["W1tdXQ==", "WzEsIDJd", "eyJhIjogMX0=", "bnVsbA==", "W1siMjAyNiJdXQ.x"]),  # cursors of other shapes
    st.builds(lambda opening, depth: base64.urlsafe_b64encode(opening * depth).decode().rstrip("="),  # nested positions
              st.sampled_from([b"[", b'{"a":']), st.integers(2, 3000)),
)
BODIES = st.one_of(
    JSON_VALUES.map(lambda value: json.dumps(value).encode()),
    envelopes().map(lambda value: json.dumps(value).encode()),
    st.lists(envelopes(), max_size=3).map(lambda value: json.dumps(value).encode()),
    st.fixed_dictionaries({}, optional={"name": st.one_of(ANY_TEXT, JSON_VALUES), "token": st.one_of(ANY_TEXT, JSON_VALUES),
                                        "upTo": st.one_of(ANY_TEXT, JSON_VALUES)}).map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({"ids": st.lists(ANY_TEXT, max_size=3)}, optional={
        "reason": ANY_TEXT, "by": ANY_TEXT, "dryRun": JSON_VALUES,
        "filter": st.dictionaries(st.sampled_from(["to", "from", "since", "until", "errorType", "client", "status"]),
                                  st.one_of(ANY_TEXT, JSON_VALUES))}).map(lambda value: json.dumps(value).encode()),
    st.binary(max_size=100),
    st.integers(30, 3000).map(lambda depth: b"[" * depth + b"]" * depth),
    st.integers(4000, 6000).map(lambda digits: b'{"from": ' + b"1" * digits + b"}"),
)
HEADERS = st.fixed_dictionaries({}, optional={
    "Content-Type": st.sampled_from(["application/json", "text/plain", "application/json; charset=latin-1", ""]),
    "Authorization": st.one_of(st.just("Bearer s3cret-operator-token-of-32-chars-or-more"), st.just("Bearer"), ANY_TEXT.map(lambda text: "Bearer " + text)
                               .filter(lambda value: value.isascii() and value.isprintable())),
    "X-Request-Id": ANY_TEXT.filter(lambda value: value.isascii() and value.isprintable()),
    "Cookie": ANY_TEXT.filter(lambda value: value.isascii() and value.isprintable() and ";" not in value)
              .map(lambda value: f"chat_session={value}; console_session={value}"),
    "X-CSRF-Token": ANY_TEXT.filter(lambda value: value.isascii() and value.isprintable()),
    "Last-Event-ID": st.one_of(ANY_TEXT.filter(lambda value: value.isascii() and value.isprintable()),
                               st.sampled_from(["e30", "eyJjbGllbnRBIjo1fQ", "W10", "eyJjbGllbnRBIjoxZTk5fQ",
                                                base64.urlsafe_b64encode(b"[" * 2500).decode()])),
})


@pytest.fixture(params=["producer", "operator"])
def client(request, app, operator_app, tokens):
    """A test client of either server, carrying clientA's token unless a request says otherwise."""
    test_client = (app if request.param == "producer" else operator_app).test_client()
    test_client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {tokens['clientA']}"
    return test_client


def _answer_is_2xx_or_json_4xx(response, method: str = "GET") -> None:
    """The promise for every answer: 2xx, or a 4xx with the API's JSON error; never 5xx, a redirect or HTML."""
    assert response.status_code < 500, response.get_data()[:300]
    assert not 300 <= response.status_code < 400
    if response.status_code >= 400:
        assert response.mimetype == "application/json"
        if method != "HEAD":  # a HEAD answer has headers only
            assert set(response.get_json()) == {"error", "message", "details"}


def _request(method: str, path: str, query: list[tuple[str, str]], body: bytes = b"", headers=None) -> EnvironBuilder:
    """A request for exactly this path ('//x' included) and query, any text encoded as UTF-8 (lone surrogates too)."""
    pairs = [(name.encode("utf-8", "surrogatepass"), value.encode("utf-8", "surrogatepass")) for name, value in query]
    builder = EnvironBuilder(method=method, query_string=urlencode(pairs), data=body,
                             headers={"Content-Type": "application/json", **(headers or {})})
    builder.path = path
    return builder


@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]),
    path=st.one_of(st.sampled_from(PATHS), st.sampled_from(PATHS).map(lambda path: "/" + path),
                   ANY_TEXT.map(lambda text: "/" + quote(text.encode("utf-8", "surrogatepass")))),
    failure_id=ANY_TEXT.map(lambda text: quote(text.encode("utf-8", "surrogatepass"), safe="")),
    query=st.lists(st.tuples(QUERY_NAMES, QUERY_VALUES), max_size=4),
    body=BODIES,
    headers=HEADERS,
)
@HOSTILE
def test_any_request_anywhere_gets_2xx_or_a_json_4xx(client, method, path, failure_id, query, body, headers):
    request = _request(method, path.replace("{id}", failure_id or "x"), query, body, headers)
    _answer_is_2xx_or_json_4xx(client.open(request), method)


@given(path=st.sampled_from(["/send-message", "/send-messages", "/failed-messages/replay", "/failed-messages/discard",
                             "/failed-messages/x/discard", "/session", "/conversations/clientB/read"]), body=BODIES)
@HOSTILE
def test_any_body_on_an_endpoint_that_reads_one_gets_2xx_or_a_json_4xx(client, path, body):
    headers = {"Authorization": "Bearer s3cret-operator-token-of-32-chars-or-more", "X-Request-Id": "fuzz"}
    _answer_is_2xx_or_json_4xx(client.post(path, data=body, content_type="application/json", headers=headers))


@given(path=st.sampled_from(["/messages", "/failed-messages", "/failed-message-counts", "/conversations"]),
       query=st.lists(st.tuples(QUERY_NAMES, QUERY_VALUES), min_size=1, max_size=5))
@HOSTILE
def test_any_query_on_a_list_endpoint_gets_2xx_or_a_json_4xx(client, path, query):
    _answer_is_2xx_or_json_4xx(client.open(_request("GET", path, query)))


@given(body=st.lists(st.one_of(envelopes(), st.fixed_dictionaries(
    {"from": VALID_CLIENT, "to": VALID_CLIENT, "message": ANY_TEXT})), min_size=1, max_size=5))
@HOSTILE
def test_a_batch_with_any_unstorable_text_publishes_nothing(app, tokens, publisher, body):
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {tokens['clientA']}"
    before = len(publisher.published)
    raw = json.dumps(body).encode()
    response = client.post("/send-messages", data=raw, content_type="application/json")
    if unsafe_strings(body):
        assert response.status_code in (400, 413) and len(publisher.published) == before
    for message in publisher.published[before:]:
        message.text.encode("utf-8")  # everything published can be written to Kafka and stored


def test_options_names_the_allowed_methods_and_has_no_content(client):
    response = client.options("/health")
    assert response.status_code == 204 and "Content-Type" not in response.headers and response.get_data() == b""
    assert set(response.allow) == {"GET", "HEAD", "OPTIONS"}


class _BadlyChunked(io.RawIOBase):
    """A request body whose chunked framing gunicorn finds broken while the view reads it."""

    def readinto(self, buffer):
        raise InvalidChunkSize(b"zz")


@pytest.mark.parametrize("path", ["/send-message", "/failed-messages/replay"])
def test_a_badly_framed_chunked_body_gets_a_json_400(app, operator_app, tokens, path):
    client = (app if path == "/send-message" else operator_app).test_client()
    token = tokens["clientA" if path == "/send-message" else "ops"]
    response = client.post(path, headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
                           environ_overrides={"wsgi.input": _BadlyChunked(), "wsgi.input_terminated": True})
    assert response.status_code == 400 and response.get_json()["error"] == "bad_request"


@given(depth=st.integers(2, 6000), opening=st.sampled_from([b"[", b'{"clientB":']),
       where=st.sampled_from(["after", "Last-Event-ID"]))
@HOSTILE
def test_a_resume_position_nested_any_depth_gets_a_json_400(app, tokens, depth, opening, where):
    position = base64.urlsafe_b64encode(opening * depth).decode().rstrip("=")[:8192]
    client = app.test_client()
    headers = {"Authorization": f"Bearer {tokens['clientA']}"}
    if where == "after":
        response = client.get("/stream", query_string={"after": position}, headers=headers)
    else:
        response = client.get("/stream", headers={**headers, "Last-Event-ID": position})
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_position"
