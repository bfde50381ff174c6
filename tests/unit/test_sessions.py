"""Pages sign in with a token and then carry a session cookie: HttpOnly, SameSite=Strict, CSRF-checked writes."""

from datetime import datetime, timezone

import pytest

from shared_adapters.mongo_identities import MongoIdentityRegistry
from shared_domain.failures import SourcePosition
from shared_domain.identity import CLIENT
from shared_domain.partitioning import partition_of
from shared_domain.stored_events import stored_event
from tests.unit.conftest import store_as_the_consumer_does


def _signed_in(app, name, token, base_url="http://localhost"):
    """A test client without a bearer token, signed in through POST /session; returns (client, csrf token, answer)."""
    client = app.test_client()
    answer = client.post("/session", json={"name": name, "token": token}, base_url=base_url)
    assert answer.status_code == 201, answer.get_json()
    return client, answer.get_json()["csrfToken"], answer


def test_signing_in_sets_an_httponly_strict_cookie_and_names_the_client(app, tokens):
    client, csrf, answer = _signed_in(app, "clientA", tokens["clientA"])
    cookie = answer.headers["Set-Cookie"]
    assert cookie.startswith("chat_session=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Secure" not in cookie and tokens["clientA"] not in cookie
    assert client.get("/session").get_json() == {**answer.get_json(), "csrfToken": csrf}
    assert client.get("/messages").status_code == 200


def test_the_cookie_is_secure_and_host_prefixed_over_https(app, tokens):
    client, _csrf, answer = _signed_in(app, "clientA", tokens["clientA"], base_url="https://localhost")
    cookie = answer.headers["Set-Cookie"]
    assert cookie.startswith("__Host-chat_session=") and "Secure" in cookie and "Path=/" in cookie
    assert "Domain" not in cookie
    assert client.get("/messages", base_url="https://localhost").status_code == 200


def test_behind_a_tls_proxy_the_setting_makes_the_cookie_secure_and_a_plain_one_is_ignored(app, tokens):
    app.extensions["access"].cookie_secure = True
    client, _csrf, answer = _signed_in(app, "clientA", tokens["clientA"])  # the proxy speaks plain HTTP to us
    assert answer.headers["Set-Cookie"].startswith("__Host-chat_session=") and "Secure" in answer.headers["Set-Cookie"]
    session_id = client.get_cookie("__Host-chat_session").value
    planted = app.test_client()
    planted.set_cookie("chat_session", session_id)  # what a page on a subdomain or over plain HTTP could set
    assert planted.get("/messages").status_code == 401


@pytest.mark.parametrize("name, token_of", [("clientA", "clientB"), ("clientA", "ops"), ("ops", "ops"),
                                            ("clientA", None)])
def test_a_wrong_name_token_or_role_cannot_sign_in(app, tokens, name, token_of):
    token = tokens[token_of] if token_of else "not-a-token"
    answer = app.test_client().post("/session", json={"name": name, "token": token})
    assert answer.status_code == 401 and answer.get_json()["error"] == "sign_in_failed"
    assert "Set-Cookie" not in answer.headers


def test_a_write_through_the_session_needs_its_csrf_token_and_sends_as_the_signed_in_client(app, tokens, publisher):
    client, csrf, _ = _signed_in(app, "clientA", tokens["clientA"])
    body = {"to": "clientB", "message": "hi"}
    for headers in ({}, {"X-CSRF-Token": "forged"}):
        refused = client.post("/send-message", json=body, headers=headers)
        assert refused.status_code == 403 and refused.get_json()["error"] == "csrf_failed"
    assert publisher.published == []
    assert client.post("/send-message", json=body, headers={"X-CSRF-Token": csrf}).status_code == 202
    assert publisher.published[-1].sender == "clientA"
    spoofed = client.post("/send-message", json={**body, "from": "clientB"}, headers={"X-CSRF-Token": csrf})
    assert spoofed.status_code == 403 and spoofed.get_json()["error"] == "sender_mismatch"


def test_signing_out_needs_the_csrf_token_and_ends_the_session_for_a_copied_cookie_too(app, tokens):
    client, csrf, answer = _signed_in(app, "clientA", tokens["clientA"])
    session_id = answer.headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
    assert client.delete("/session").status_code == 403
    out = client.delete("/session", headers={"X-CSRF-Token": csrf})
    assert out.status_code == 204 and "chat_session=;" in out.headers["Set-Cookie"]
    copy = app.test_client()
    copy.set_cookie("chat_session", session_id)
    ended = copy.get("/messages")
    assert ended.status_code == 401 and ended.get_json()["error"] == "unauthorized"


def test_revoking_the_token_ends_its_sessions(app, tokens, database):
    client, _csrf, _ = _signed_in(app, "clientA", tokens["clientA"])
    MongoIdentityRegistry(database).revoke(CLIENT, "clientA")
    app.extensions["access"].identities = MongoIdentityRegistry(database)  # no one-second snapshot wait
    assert client.get("/messages").status_code == 401


def test_a_client_session_does_not_open_the_operator_console_or_its_api(app, operator_app, tokens):
    _client, _csrf, answer = _signed_in(app, "clientA", tokens["clientA"])
    session_id = answer.headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
    intruder = operator_app.test_client()
    for name in ("chat_session", "console_session"):
        intruder.set_cookie(name, session_id)
    assert intruder.get("/failed-messages").status_code == 403
    assert b"Operator sign-in" in intruder.get("/").get_data()
    signed = intruder.post("/session", json={"name": "clientA", "token": tokens["clientA"]})
    assert signed.status_code == 401


def test_an_operator_signs_in_to_the_console_and_acts_with_its_csrf_token(operator_app, tokens):
    client, csrf, answer = _signed_in(operator_app, "ops", tokens["ops"])
    assert answer.headers["Set-Cookie"].startswith("console_session=")
    assert client.get("/failed-messages").status_code == 200
    body = {"ids": ["x"], "dryRun": True}
    assert client.post("/failed-messages/replay", json=body).status_code == 403
    assert client.post("/failed-messages/replay", json=body, headers={"X-CSRF-Token": csrf}).status_code == 200
    page = client.get("/")
    assert page.mimetype == "text/html" and b"Dead-letter console" in page.get_data() and csrf.encode() in page.get_data()


def test_the_chat_page_offers_sign_in_then_the_chat_under_a_strict_content_policy(app, tokens):
    anonymous = app.test_client().get("/")
    assert anonymous.status_code == 200 and b'id="sign-in-form"' in anonymous.get_data()
    assert "script-src 'self'" in anonymous.headers["Content-Security-Policy"]
    client, csrf, _ = _signed_in(app, "clientA", tokens["clientA"])
    page = client.get("/").get_data(as_text=True)
    assert 'id="composer"' in page and csrf in page and 'maxlength="100"' in page
    assert app.test_client().get("/assets/chat/chat.js").status_code == 200


def test_conversations_list_the_latest_first_with_unread_counts_until_read(client, database, tokens):
    def stored(n, sender, to, minute):
        store_as_the_consumer_does(database, [stored_event(f"m{n}", sender, to, "x", datetime(
            2026, 1, 1, 0, minute, tzinfo=timezone.utc), SourcePosition("t", partition_of(to.encode(), 3), n))])
    stored(1, "clientB", "clientA", 1)
    stored(2, "clientB", "clientA", 2)
    stored(3, "clientA", "clientC", 3)
    stored(4, "clientB", "clientC", 4)  # not clientA's
    listed = client.get("/conversations").get_json()
    assert [(c["with"], c["unread"], c["preview"]) for c in listed] == [("clientC", 0, "x"), ("clientB", 2, "x")]
    read = client.post("/conversations/clientB/read", json={"upTo": "2026-01-01T00:01:00Z"})
    assert read.status_code == 204
    assert client.get("/conversations").get_json()[1]["unread"] == 1
    client.post("/conversations/clientB/read", json={"upTo": "2025-01-01T00:00:00Z"})  # never backwards
    assert client.get("/conversations").get_json()[1]["unread"] == 1
    bad = client.post("/conversations/clientB/read", json={"upTo": "soon"})
    assert bad.status_code == 400 and "upTo" in bad.get_json()["details"]


@pytest.mark.parametrize("name", ["é", "clientA\u0301", "🙂"])
def test_a_sign_in_under_any_name_with_a_real_token_is_refused_not_an_error(app, tokens, name):
    answer = app.test_client().post("/session", json={"name": name, "token": tokens["clientA"]})
    assert answer.status_code == 401 and answer.get_json()["error"] == "sign_in_failed"
