"""Identities on the API: a client sends as itself, reads only its own conversations; operators apart."""

import pytest
from pymongo.errors import ServerSelectionTimeoutError

from shared_adapters.mongo_identities import MongoIdentityRegistry
from shared_domain.availability import StoreUnavailable
from shared_domain.identity import CLIENT

from .conftest import bearer
from .test_query_api import store

SEND = {"to": "clientB", "message": "hi"}


def test_the_token_names_the_sender(client, publisher):
    assert client.post("/send-message", json=SEND).status_code == 202
    assert client.post("/send-message", json={**SEND, "from": "clientA"}).status_code == 202
    assert [message.sender for message in publisher.published] == ["clientA", "clientA"]


def test_sending_as_someone_else_is_refused_naming_from(client, publisher):
    response = client.post("/send-message", json={**SEND, "from": "clientC"})
    assert response.status_code == 403 and response.get_json()["error"] == "sender_mismatch"
    assert "from" in response.get_json()["details"] and publisher.published == []


def test_a_batch_refuses_each_spoofed_item_and_sends_the_others(client, publisher):
    body = client.post("/send-messages", json=[SEND, {**SEND, "from": "clientB"}, {**SEND, "to": "nobody"}]).get_json()
    assert [item["status"] for item in body["results"]] == [202, 403, 400]
    assert [message.sender for message in publisher.published] == ["clientA"]


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer nope", "Basic eDp5", "bearer  "])
def test_a_send_without_a_live_token_gets_401_with_a_challenge(app, publisher, header):
    response = app.test_client().post("/send-message", json=SEND, headers={"Authorization": header} if header else {})
    assert response.status_code == 401 and response.headers["WWW-Authenticate"].startswith('Bearer realm=')
    assert response.get_json()["error"] == "unauthorized" and publisher.published == []


def test_an_operator_token_cannot_send_or_read_messages(client, tokens):
    assert client.post("/send-message", json=SEND, headers=bearer(tokens["ops"])).status_code == 403
    assert client.get("/messages", headers=bearer(tokens["ops"])).status_code == 403


def test_a_revoked_token_is_refused_within_the_cache_time(app, database, tokens):
    now = [0.0]
    registry = MongoIdentityRegistry(database, clock=lambda: now[0])
    app.extensions["messaging"].identities = app.extensions["access"].identities = registry
    web = app.test_client()
    assert web.get("/messages", headers=bearer(tokens["clientB"])).status_code == 200
    registry.revoke(CLIENT, "clientB")
    now[0] += 1.01
    assert web.get("/messages", headers=bearer(tokens["clientB"])).status_code == 401


def test_each_client_reads_only_what_it_sent_or_received(client, database, tokens):
    store(database, "ab", "clientA", "clientB", 1)
    store(database, "bc", "clientB", "clientC", 2)
    store(database, "ca", "clientC", "clientA", 3)
    everything = {name: follow_as(client, tokens[name], "/messages") for name in ("clientA", "clientB", "clientC")}
    assert everything == {"clientA": ["ab", "ca"], "clientB": ["ab", "bc"], "clientC": ["bc", "ca"]}
    # Filters narrow what the caller may see; they never widen it.
    assert follow_as(client, tokens["clientC"], "/messages?from=clientA&to=clientB") == []


def test_with_gives_one_conversation_both_ways_newest_first_on_request(client, database, tokens):
    for n, (sender, recipient) in enumerate([("clientA", "clientB"), ("clientB", "clientA"), ("clientA", "clientC"),
                                             ("clientB", "clientA"), ("clientA", "clientB")]):
        store(database, f"m{n}", sender, recipient, n)
    assert follow_as(client, tokens["clientA"], "/messages?with=clientB") == ["m0", "m1", "m3", "m4"]
    assert follow_as(client, tokens["clientA"], "/messages?with=clientB&order=desc") == ["m4", "m3", "m1", "m0"]
    assert follow_as(client, tokens["clientC"], "/messages?with=clientB") == []
    assert client.get("/messages?order=sideways").get_json()["details"] == {"order": ["must be asc (oldest first) or desc (newest first)"]}


def test_sends_past_the_rate_limit_get_429_with_retry_after(app, tokens):
    app.extensions["messaging"].settings = settings = app.extensions["messaging"].settings.__class__(send_rate_limit=2)
    web = app.test_client()
    answers = [web.post("/send-message", json=SEND, headers=bearer(tokens["clientA"])).status_code for _ in range(3)]
    assert answers == [202, 202, 429] and settings.send_rate_limit == 2
    response = web.post("/send-message", json=SEND, headers=bearer(tokens["clientA"]))
    assert response.get_json()["error"] == "rate_limited" and int(response.headers["Retry-After"]) >= 1
    assert web.post("/send-message", json=SEND, headers=bearer(tokens["clientC"])).status_code == 202


def test_failed_authentications_from_one_address_get_429(app):
    app.extensions["access"].auth_failure_limit = 3
    answers = [app.test_client().get("/messages", headers=bearer(f"guess-{n}")).status_code for n in range(5)]
    assert answers == [401, 401, 401, 429, 429]


def test_past_the_failure_limit_even_the_right_token_is_refused_before_it_is_compared(app, tokens):
    app.extensions["access"].auth_failure_limit = 3
    web = app.test_client()
    assert [web.get("/messages", headers=bearer(f"guess-{n}")).status_code for n in range(3)] == [401] * 3
    right = web.get("/messages", headers=bearer(tokens["clientA"]))
    assert right.status_code == 429 and int(right.headers["Retry-After"]) >= 1
    signed_in = web.post("/session", json={"name": "clientA", "token": tokens["clientA"]})
    assert signed_in.status_code == 429, "a sign-in with the right token past the limit is refused too"


def test_failed_sign_ins_count_and_refuse_even_while_the_store_is_down(app, tokens, monkeypatch):
    app.extensions["access"].auth_failure_limit = 2
    web = app.test_client()
    assert [web.post("/session", json={"name": "clientA", "token": f"guess-{n}"}).status_code for n in range(2)] == [401] * 2
    limiter = app.extensions["access"].limiter
    monkeypatch.setattr(limiter, "hit", lambda *args, **kwargs: (_ for _ in ()).throw(StoreUnavailable("down")))
    assert web.post("/session", json={"name": "clientA", "token": tokens["clientA"]}).status_code == 429


def test_sends_while_the_limiters_store_is_down_are_limited_in_each_process(app, tokens, monkeypatch):
    app.extensions["messaging"].settings = app.extensions["messaging"].settings.__class__(send_rate_limit=2)
    limiter = app.extensions["access"].limiter
    monkeypatch.setattr(limiter, "hit", lambda *args, **kwargs: (_ for _ in ()).throw(StoreUnavailable("down")))
    web = app.test_client()
    answers = [web.post("/send-message", json=SEND, headers=bearer(tokens["clientA"])).status_code for _ in range(3)]
    assert answers == [202, 202, 429], "bounded, not lifted, while the store does not answer"


def test_sends_while_the_store_does_not_answer_the_limiter_stay_limited_and_are_warned_of_once(app, tokens, monkeypatch,
                                                                                               caplog):
    app.extensions["messaging"].settings = app.extensions["messaging"].settings.__class__(send_rate_limit=2)
    limiter = app.extensions["access"].limiter

    def unanswered(document):
        raise ServerSelectionTimeoutError("no servers found")

    monkeypatch.setattr(limiter._blocks, "insert_one", unanswered)
    web = app.test_client()
    answers = [web.post("/send-message", json=SEND, headers=bearer(tokens["clientA"])).status_code for _ in range(4)]
    assert answers == [202, 202, 429, 429], "counted in the process, also while the limiter does not ask the store"
    warnings = [record for record in caplog.records if "counted in this process only" in record.getMessage()]
    assert len(warnings) == 1, "one warning, not one a request"


def follow_as(client, token: str, url: str) -> list[str]:
    """Every message id on every page of url, as the holder of token."""
    ids = []
    while url:
        response = client.get(url, headers=bearer(token))
        assert response.status_code == 200, response.get_json()
        ids += [item["messageId"] for item in response.get_json()]
        link = response.headers.get("Link")
        url = link[link.index("<") + 1:link.index(">")] if link else None
    return ids


def test_with_authentication_off_the_body_names_the_sender_everything_is_visible_and_a_warning_is_printed(
        publisher, database, health, replayed, capsys):
    from producer_service.config import ProducerSettings

    from .conftest import make_app

    open_app = make_app(publisher, database, health, replayed, ProducerSettings(auth_enabled=False))
    assert "AUTHENTICATION IS OFF" in capsys.readouterr().err
    web = open_app.test_client()
    assert web.post("/send-message", json=SEND).get_json()["details"] == {"from": ["Missing data for required field."]}
    assert web.post("/send-message", json={**SEND, "from": "anyone"}).status_code == 202
    store(database, "bc", "clientB", "clientC", 1)
    assert [m["messageId"] for m in web.get("/messages").get_json()] == ["bc"]
