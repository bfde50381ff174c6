"""The operator server's dead-letter API: only for operators; list, count, show, replay, discard."""

import pytest
from pymongo.errors import ExecutionTimeout, ServerSelectionTimeoutError

from .conftest import bearer
from .failure_fixtures import failed_document

AUTH = bearer("s3cret-operator-token-of-32-chars-or-more")
FIRST = "client-messages:0:1:clientB"


@pytest.fixture
def app(operator_app):
    """These tests call the operator server."""
    return operator_app


@pytest.fixture
def client(operator_app, tokens):
    """A test client of the operator server carrying clientA's token unless a request says otherwise."""
    test_client = operator_app.test_client()
    test_client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {tokens['clientA']}"
    return test_client


@pytest.fixture(autouse=True)
def failures(database):
    """Two failed records in the store."""
    database.failed_messages.insert_many([failed_document(1), failed_document(2, to="clientC")])


@pytest.mark.parametrize("operator_token", [None])
def test_the_legacy_operator_token_works_only_when_configured(client, tokens):
    response = client.post("/failed-messages/replay", json={"ids": [FIRST], "dryRun": True}, headers=AUTH)
    assert response.status_code == 401 and response.get_json()["error"] == "unauthorized"
    registered = client.post("/failed-messages/replay", json={"ids": [FIRST], "dryRun": True}, headers=bearer(tokens["ops"]))
    assert registered.status_code == 200


def test_no_token_or_an_unknown_one_gets_401_and_a_client_token_403(client, app):
    anonymous = app.test_client()
    for path in ("/failed-messages", "/failed-message-counts", f"/failed-messages/{FIRST}"):
        missing = anonymous.get(path)
        assert missing.status_code == 401 and missing.headers["WWW-Authenticate"].startswith("Bearer")
        unknown = anonymous.get(path, headers=bearer("nope"))
        assert unknown.status_code == 401 and 'error="invalid_token"' in unknown.headers["WWW-Authenticate"]
        assert client.get(path).status_code == 403  # clientA's token


def test_show_returns_the_record_with_headers_and_history(client):
    body = client.get(f"/failed-messages/{FIRST}", headers=AUTH).get_json()
    assert body["id"] == FIRST and body["messageId"] == "m-1" and body["history"] == []
    assert {"name": "trace-id", "value": "t", "encoding": "utf-8"} in body["headers"]
    assert client.get("/failed-messages/nope", headers=AUTH).status_code == 404


def test_a_dry_run_replay_by_filter_reports_and_changes_nothing(client, replayed, database):
    body = client.post("/failed-messages/replay", json={"filter": {"to": "clientC"}, "dryRun": True}, headers=AUTH).get_json()
    assert body["dryRun"] is True and body["done"] == ["client-messages:0:2:clientB"]
    assert replayed.records == [] and database.failed_messages.count_documents({"status": "failed"}) == 2


def test_replay_by_id_republishes_and_records_the_operator_of_the_token(client, replayed, database, tokens):
    body = client.post("/failed-messages/replay", json={"ids": [FIRST], "by": "bob"}, headers=bearer(tokens["ops"])).get_json()
    assert body["done"] == [FIRST] and len(replayed.records) == 1
    document = database.failed_messages.find_one({"_id": FIRST})
    assert document["status"] == "replayed" and document["history"][0]["by"] == "ops"
    again = client.post("/failed-messages/replay", json={"ids": [FIRST]}, headers=AUTH).get_json()
    assert again["done"] == [] and again["skipped"] == {FIRST: "already replayed"}


@pytest.mark.parametrize("body, field", [
    ({}, "_schema"),
    ({"ids": [FIRST], "filter": {}}, "_schema"),
    ({"filter": {"status": "lost"}}, "filter"),
    ({"ids": []}, "ids"),
    ({"ids": [FIRST], "colour": "red"}, "colour"),
])
def test_a_bad_replay_request_gets_400_naming_the_field(client, body, field):
    response = client.post("/failed-messages/replay", json=body, headers=AUTH)
    assert response.status_code == 400 and field in response.get_json()["details"]


def test_discard_needs_a_reason_and_records_it(client, database):
    assert "reason" in client.post(f"/failed-messages/{FIRST}/discard", json={}, headers=AUTH).get_json()["details"]
    body = client.post(f"/failed-messages/{FIRST}/discard", json={"reason": "spam"}, headers=AUTH).get_json()
    assert body["done"] == [FIRST]
    assert database.failed_messages.find_one({"_id": FIRST})["history"][0]["reason"] == "spam"
    assert client.post("/failed-messages/nope/discard", json={"reason": "x"}, headers=AUTH).status_code == 404


def test_discard_by_filter_dry_runs_then_marks_only_the_selected_records(client, database):
    request = {"filter": {"to": "clientC"}, "reason": "clientC was retired"}
    dry = client.post("/failed-messages/discard", json={**request, "dryRun": True}, headers=AUTH).get_json()
    assert dry["dryRun"] is True and dry["done"] == ["client-messages:0:2:clientB"]
    assert database.failed_messages.count_documents({"status": "failed"}) == 2
    done = client.post("/failed-messages/discard", json=request, headers=AUTH).get_json()
    assert done["done"] == ["client-messages:0:2:clientB"]
    [entry] = database.failed_messages.find_one({"_id": "client-messages:0:2:clientB"})["history"]
    assert (entry["status"], entry["reason"], entry["by"]) == ("discarded", "clientC was retired", "OPERATOR_TOKEN")
    assert database.failed_messages.find_one({"_id": FIRST})["status"] == "failed"


@pytest.mark.parametrize("body, field", [
    ({"ids": [FIRST]}, "reason"),
    ({"reason": "x"}, "_schema"),
    ({"ids": [FIRST], "filter": {}, "reason": "x"}, "_schema"),
    ({"filter": {"colour": "red"}, "reason": "x"}, "filter"),
])
def test_a_bad_discard_request_gets_400_naming_the_field(client, body, field):
    response = client.post("/failed-messages/discard", json=body, headers=AUTH)
    assert response.status_code == 400 and field in response.get_json()["details"]


def test_replay_filters_on_the_reason_text(client, database):
    database.failed_messages.update_one({"_id": FIRST}, {"$set": {"reason": "Timed OUT"}})
    body = client.post("/failed-messages/replay", json={"filter": {"reasonContains": "timed out"}, "dryRun": True},
                       headers=AUTH).get_json()
    assert body["done"] == [FIRST]


def test_a_store_that_does_not_answer_gets_503_json_not_a_stack_trace(client, database, monkeypatch):
    def timed_out(*_args, **_kwargs):
        raise ServerSelectionTimeoutError("127.0.0.1:27017: connection refused")

    monkeypatch.setattr(type(database.failed_messages), "find", timed_out)
    for response in (client.get(f"/failed-messages/{FIRST}", headers=AUTH),
                     client.post("/failed-messages/replay", json={"ids": [FIRST]}, headers=AUTH)):
        assert response.status_code == 503 and response.headers["Retry-After"]
        assert response.get_json()["error"] == "store_unavailable"


def test_a_search_the_store_stops_at_its_time_limit_gets_422_and_changes_nothing(client, replayed, database, monkeypatch):
    def stopped(*_args, **_kwargs):
        raise ExecutionTimeout("operation exceeded time limit", 50)

    monkeypatch.setattr(database.failed_messages, "find", stopped)
    monkeypatch.setattr(database.failed_messages, "aggregate", stopped)
    for response in (client.get("/failed-messages?errorType=SchemaViolation", headers=AUTH),
                     client.get("/failed-message-counts", headers=AUTH),
                     client.post("/failed-messages/replay", json={"filter": {"errorType": "SchemaViolation"}},
                                 headers=AUTH)):
        assert response.status_code == 422, response.get_json()
        assert response.get_json()["error"] == "query_too_costly"
    assert replayed.records == []


def test_a_broker_that_does_not_acknowledge_a_replay_gets_503(client, replayed, database):
    replayed.down = True
    response = client.post("/failed-messages/replay", json={"ids": [FIRST]}, headers=AUTH)
    assert response.status_code == 503 and response.get_json()["error"] == "broker_unavailable"
    assert database.failed_messages.find_one({"_id": FIRST})["status"] == "failed"


def test_the_listing_filters_and_the_counts_group_by_error_type(client, database):
    database.failed_messages.insert_one(failed_document(3, error_type="SchemaViolation", to="clientC"))
    listed = client.get("/failed-messages?to=clientC", headers=AUTH).get_json()
    assert [item["id"] for item in listed] == ["client-messages:0:2:clientB", "client-messages:0:3:clientB"]
    assert "payload" not in listed[0]
    counts = client.get("/failed-message-counts?to=clientC", headers=AUTH).get_json()
    assert counts["total"] == 2 and sum(counts["byErrorType"].values()) == 2
    assert counts["byErrorType"]["SchemaViolation"] == 1
    bad = client.get("/failed-messages?limit=0&status=nope&since=yesterday", headers=AUTH)
    assert bad.status_code == 400 and set(bad.get_json()["details"]) == {"limit", "status", "since"}
