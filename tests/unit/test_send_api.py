"""POST /send-message: accepted, refused with a reason, or unavailable."""

import logging

import pytest

VALID = {"from": "clientA", "to": "clientB", "message": "hello"}


def test_a_valid_message_is_accepted_once_published(client, publisher):
    response = client.post("/send-message", json=VALID)
    assert response.status_code == 202
    body = response.get_json()
    [message] = publisher.published
    assert body["messageId"] == message.message_id and body["status"] == "accepted"
    assert (message.sender, message.recipient, message.text) == ("clientA", "clientB", "hello")
    assert body["sentAt"].endswith("Z")


def test_a_client_chosen_message_id_is_used(client, publisher):
    response = client.post("/send-message", json={**VALID, "messageId": "abc-1"})
    assert response.get_json()["messageId"] == "abc-1" == publisher.published[0].message_id


@pytest.mark.parametrize("body, field", [
    ({"from": "clientA", "message": "hi"}, "to"),
    ({**VALID, "to": "bad id!"}, "to"),
    ({**VALID, "to": "clientZ"}, "to"),  # not registered
    ({**VALID, "message": "x" * 101}, "message"),
    ({**VALID, "unexpected": True}, "unexpected"),
])
def test_an_invalid_message_gets_400_naming_the_field(client, publisher, body, field):
    response = client.post("/send-message", json=body)
    assert response.status_code == 400
    error = response.get_json()
    assert error["error"] == "validation_failed" and field in error["details"]
    assert publisher.published == []


def test_a_body_that_is_not_an_object_gets_400(client):
    response = client.post("/send-message", json=["a"])
    assert response.status_code == 400 and response.get_json()["details"] == {"_schema": ["must be an object"]}


def test_malformed_json_gets_400(client):
    response = client.post("/send-message", data="{not json", content_type="application/json")
    assert response.status_code == 400 and response.get_json()["error"] == "malformed_json"


def test_a_body_that_is_not_json_gets_415(client):
    response = client.post("/send-message", data="from=clientA", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415 and "Content-Type" in response.get_json()["details"]


def test_an_oversized_body_gets_413(client):
    response = client.post("/send-message", data="x" * 4096, content_type="application/json")
    assert response.status_code == 413 and response.get_json()["error"] == "request_entity_too_large"


def test_an_unreachable_broker_gets_503_with_retry_after(client, publisher):
    publisher.down = True
    response = client.post("/send-message", json=VALID)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.get_json()["error"] == "broker_unavailable"


def test_a_wrong_method_and_an_unknown_path_get_json(client):
    assert client.get("/send-message").get_json()["error"] == "method_not_allowed"
    assert client.get("/nowhere").get_json()["error"] == "not_found"


def test_a_batch_of_valid_messages_is_accepted_in_order(client, publisher):
    batch = [{**VALID, "message": f"m{n}"} for n in range(3)]
    response = client.post("/send-messages", json=batch)
    assert response.status_code == 202
    body = response.get_json()
    assert body["accepted"] == 3 and [r["index"] for r in body["results"]] == [0, 1, 2]
    assert [m.text for m in publisher.published] == ["m0", "m1", "m2"]


def test_a_batch_with_bad_items_sends_the_good_ones_and_names_each_bad_field(client, publisher):
    response = client.post("/send-messages", json=[VALID, {**VALID, "to": ""}, "nope"])
    assert response.status_code == 207
    results = response.get_json()["results"]
    assert [r["status"] for r in results] == [202, 400, 400]
    assert "to" in results[1]["details"] and len(publisher.published) == 1


def test_a_batch_the_broker_does_not_take_is_rejected_item_by_item_with_retry_after(client, publisher):
    publisher.down = True
    response = client.post("/send-messages", json=[VALID, VALID])
    assert response.status_code == 207 and response.headers["Retry-After"] == "5"
    assert [r["status"] for r in response.get_json()["results"]] == [503, 503]


@pytest.mark.parametrize("body", [[], {"from": "a"}, [VALID] * 101])
def test_a_batch_must_be_a_bounded_array(client, body):
    response = client.post("/send-messages", json=body)
    assert response.status_code in (400, 413) and response.get_json()["error"]


def test_a_batch_logs_one_line_naming_each_accepted_message_and_each_message_only_at_debug(client, publisher, caplog):
    with caplog.at_level(logging.INFO, logger="producer_service"):
        client.post("/send-messages", json=[{**VALID, "message": f"m{n}"} for n in range(3)] + ["nope"])
    [line] = [record for record in caplog.records if record.name.startswith("producer_service")]
    assert line.getMessage() == "messages accepted"
    assert line.messageIds == [message.message_id for message in publisher.published] and len(line.messageIds) == 3
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="producer_service"):
        client.post("/send-messages", json=[VALID, VALID])
    assert [record.getMessage() for record in caplog.records if record.name.startswith("producer_service")] == [
        "message accepted", "message accepted", "messages accepted"]
