"""GET /messages and GET /failed-messages: filters, stable order, cursor pagination."""

from datetime import datetime, timedelta, timezone

from pymongo.errors import ExecutionTimeout

from shared_domain.failures import SourcePosition
from shared_domain.message import Message
from shared_domain.partitioning import partition_of
from shared_domain.stored_events import StoredEvent

from .conftest import bearer, store_as_the_consumer_does

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def store(database, message_id, sender, recipient, minutes):
    """Store a message sent `minutes` after T0 (at offset `minutes` of its recipient's partition), with its views."""
    message = Message(message_id, sender, recipient, f"text of {message_id}", T0 + timedelta(minutes=minutes))
    source = SourcePosition("client-messages", partition_of(recipient.encode(), 3), minutes)
    store_as_the_consumer_does(database, [StoredEvent(message, source)])


def follow(client, url):
    """Fetch every page from url; return the ids in order and the number of pages."""
    ids, pages = [], 0
    while url:
        response = client.get(url)
        assert response.status_code == 200
        ids += [item["messageId"] for item in response.get_json()]
        pages += 1
        link = response.headers.get("Link")
        url = link[link.index("<") + 1:link.index(">")].replace("http://localhost", "") if link else None
    return ids, pages


def test_messages_are_filtered_by_recipient_and_listed_oldest_first(client, database):
    store(database, "m3", "clientA", "clientB", 3)
    store(database, "m1", "clientA", "clientB", 1)
    store(database, "m2", "clientA", "clientC", 2)
    response = client.get("/messages?to=clientB")
    assert [item["messageId"] for item in response.get_json()] == ["m1", "m3"]
    assert response.get_json()[0] == {"messageId": "m1", "from": "clientA", "to": "clientB",
                                      "message": "text of m1", "sentAt": "2026-01-01T00:01:00.000Z"}


def test_pages_follow_the_next_link_without_gaps_or_repeats(client, database):
    for n, minutes in enumerate([1, 1, 1, 2, 3]):
        store(database, f"m{n}", "clientA", "clientB", minutes)
    ids, pages = follow(client, "/messages?to=clientB")
    assert ids == ["m0", "m1", "m2", "m3", "m4"] and pages == 3


def test_sender_and_time_range_narrow_the_list(client, database, tokens):
    for minutes in range(5):
        store(database, f"a{minutes}", "clientA", "clientB", minutes)
        store(database, f"z{minutes}", "clientZ", "clientB", minutes)
    response = client.get("/messages?from=clientZ&since=2026-01-01T00:01:00Z&until=2026-01-01T00:03:00Z&limit=5",
                          headers=bearer(tokens["clientB"]))
    assert [item["messageId"] for item in response.get_json()] == ["z1", "z2"]


def test_bad_query_parameters_get_400_naming_each(client):
    response = client.get("/messages?limit=9999&since=soon&cursor=@@&colour=red")
    assert response.status_code == 400
    assert set(response.get_json()["details"]) == {"limit", "since", "cursor", "colour"}


def test_failed_messages_filter_by_status(client, database, tokens):
    base = {"reason": "r", "errorType": "SchemaViolation", "attempts": 1, "consumerClient": "clientB",
            "source": {"topic": "client-messages", "partition": 0, "offset": 1}, "payload": "{}", "payloadEncoding": "utf-8"}
    database.failed_messages.insert_many([
        {**base, "_id": "f1", "status": "failed", "failedAt": T0},
        {**base, "_id": "f2", "status": "replayed", "failedAt": T0},
    ])
    items = client.get("/failed-messages?status=failed", headers=bearer(tokens["ops"])).get_json()
    assert [(item["id"], item["errorType"], item["failedAt"]) for item in items] == [("f1", "SchemaViolation", "2026-01-01T00:00:00.000Z")]
    assert client.get("/failed-messages?status=lost", headers=bearer(tokens["ops"])).status_code == 400


def test_readiness_names_the_dependency_that_is_down(client, health):
    assert client.get("/ready").status_code == 200
    health["mongodb"] = False
    response = client.get("/ready")
    assert response.status_code == 503
    assert response.get_json()["dependencies"] == {"kafka": "up", "mongodb": "down"}
    assert client.get("/health").status_code == 200


def test_a_listing_the_store_stops_at_its_time_limit_gets_422_json_not_a_503(client, database, tokens, monkeypatch):
    def stopped(*_args, **_kwargs):
        raise ExecutionTimeout("operation exceeded time limit", 50)

    monkeypatch.setattr(database.failed_messages, "find", stopped)
    response = client.get("/failed-messages?errorType=SchemaViolation", headers=bearer(tokens["ops"]))
    assert response.status_code == 422 and "Retry-After" not in response.headers
    assert response.get_json()["error"] == "query_too_costly"
