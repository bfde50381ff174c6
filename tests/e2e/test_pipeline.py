"""The whole pipeline through its public surfaces: HTTP in, Kafka, consumer, MongoDB, HTTP out."""

import json
import time
import uuid

import pytest
from confluent_kafka import Consumer

from infra.process import wait_until
from shared_domain.stored_events import decode_stored_event


@pytest.fixture(scope="module")
def stack(stack_factory, mongo):
    """Producer plus a consumer for clientB."""
    return stack_factory(clients=("clientB",))


def stored(api, **filters) -> list[dict]:
    """Every stored message matching the filters (first page of up to 500)."""
    reply = api.get("/messages", limit=500, **filters)
    assert reply.status == 200, reply.body
    return reply.body


def test_a_message_from_a_to_b_is_listed_for_b(stack):
    text = f"hello {uuid.uuid4()}"
    reply = stack.api.send("clientA", "clientB", text)
    assert reply.status == 202, reply.body
    message_id = reply.body["messageId"]
    wait_until(lambda: any(m["messageId"] == message_id for m in stored(stack.api, to="clientB")),
               timeout=20, what="the message in GET /messages")
    [item] = [m for m in stored(stack.api, to="clientB") if m["messageId"] == message_id]
    assert (item["from"], item["to"], item["message"]) == ("clientA", "clientB", text)


def test_resending_a_message_id_stores_it_once(stack):
    message_id = f"idem-{uuid.uuid4()}"
    for _ in range(3):
        assert stack.api.send("clientA", "clientB", "once", messageId=message_id).status == 202
    follower = stack.api.send("clientA", "clientB", "after").body["messageId"]
    wait_until(lambda: any(m["messageId"] == follower for m in stored(stack.api, to="clientB")), timeout=20,
               what="the follow-up message")
    assert [m["messageId"] for m in stored(stack.api, to="clientB")].count(message_id) == 1


def test_a_message_to_a_client_without_consumer_is_not_stored(stack):
    reply = stack.api.send("clientA", "clientZ", "nobody listens")
    assert reply.status == 202
    # clientB's consumer reads clientB's partition alone: past the record when they share it, never there otherwise.
    later = stack.api.send("clientA", "clientB", "after it").body["messageId"]
    wait_until(lambda: any(m["messageId"] == later for m in stored(stack.api, to="clientB")), timeout=20,
               what="a later message to clientB stored")
    assert stored(stack.api, to="clientZ") == []


@pytest.mark.parametrize("body, status, field", [
    ({"from": "clientA", "to": "client B", "message": "x"}, 400, "to"),
    ({"from": "clientA", "to": "clientB"}, 400, "message"),
    ({"from": "clientA", "to": "clientB", "message": "x", "bcc": "clientC"}, 400, "bcc"),
])
def test_bad_requests_get_json_naming_the_field(stack, body, status, field):
    reply = stack.api.post("/send-message", body)
    assert reply.status == status and field in reply.body["details"]


def test_malformed_and_oversized_bodies_get_json_errors(stack):
    signed = stack.api.as_("clientA")
    assert stack.api.post("/send-message", b"{oops", headers=signed).status == 400
    assert stack.api.post("/send-message", b"from=a", content_type="text/plain", headers=signed).status == 415
    assert stack.api.post("/send-message", b"x" * 70000, headers=signed).status == 413


@pytest.mark.parametrize("value, error_type", [
    (b"\xff\xfe\x00 definitely not json", "UndecodableRecord"),
    (json.dumps({"schemaVersion": 1, "to": "clientB", "message": 42}).encode(), "SchemaViolation"),
])
def test_poison_lands_in_the_dead_letter_queue_unchanged_and_the_consumer_goes_on(stack, value, error_type):
    partition, offset = stack.produce_raw(b"clientB", value, headers=[("trace-id", b"poison")])
    failure_id = f"{stack.topics[0]}:{partition}:{offset}:clientB"

    def listed():
        items = stack.api.get("/failed-messages", client="clientB", limit=500).body
        return next((item for item in items if item["id"] == failure_id), None)

    wait_until(lambda: listed() is not None, timeout=20, what="the failure in GET /failed-messages")
    item = listed()
    assert item["errorType"] == error_type and item["status"] == "failed" and item["reason"]
    assert item["source"] == {"topic": stack.topics[0], "partition": partition, "offset": offset}
    letter = stack.dead_letters_of({(partition, offset)})[(partition, offset)]
    assert letter.value() == value and letter.key() == b"clientB"
    assert dict(letter.headers())["trace-id"] == b"poison"
    test_a_message_from_a_to_b_is_listed_for_b(stack)


def test_a_batch_is_published_together_and_each_message_stored(stack):
    batch = [{"from": "clientA", "to": "clientB", "message": f"batch {n}"} for n in range(5)]
    reply = stack.api.post("/send-messages", batch + [{"from": "clientA", "to": "", "message": "bad"}])
    assert reply.status == 207 and reply.body["accepted"] == 5
    ids = {result["messageId"] for result in reply.body["results"][:5]}
    wait_until(lambda: ids <= {m["messageId"] for m in stored(stack.api, to="clientB")}, timeout=20,
               what="the batch in GET /messages")


def test_each_stored_message_is_announced_on_the_stored_events_topic_with_its_source(stack):
    text = f"announced {uuid.uuid4()}"
    reply = stack.api.send("clientA", "clientB", text)
    assert reply.status == 202, reply.body
    poison_position = stack.produce_raw(b"clientB", b"\xffnot json")
    follower = stack.api.send("clientA", "clientB", "after the poison").body["messageId"]
    events = _events_until(stack, follower)
    [event] = [event for event in events if event.message.message_id == reply.body["messageId"]]
    assert (event.message.sender, event.message.recipient, event.message.text) == ("clientA", "clientB", text)
    assert (event.source.topic, event.source.partition, event.source.offset) == (
        stack.topics[0], reply.body["partition"], reply.body["offset"])
    assert all((event.source.partition, event.source.offset) != poison_position for event in events), \
        "a dead-lettered record is not announced"


def _events_until(stack, message_id: str, timeout: float = 30.0) -> list:
    """The stack's stored events from the start, read until one announces `message_id`."""
    consumer = Consumer({"bootstrap.servers": stack.kafka, "group.id": f"events-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest"})
    consumer.subscribe([stack.env["STORED_EVENTS_TOPIC"]])
    events, end = [], time.monotonic() + timeout
    try:
        while time.monotonic() < end and not any(event.message.message_id == message_id for event in events):
            record = consumer.poll(0.5)
            if record is not None and record.error() is None:
                events.append(decode_stored_event(record.value()))
    finally:
        consumer.close()
    assert any(event.message.message_id == message_id for event in events), f"no stored event for {message_id}"
    return events



def test_sigterm_stops_consumer_and_producer_cleanly(stack):
    consumer, producer = stack.processes[0], stack.producer
    assert consumer.stop(timeout=30) == 0 and producer.stop(timeout=30) == 0
    log = consumer.log_path.read_text()
    assert "received SIGTERM" in log and "consumer[clientB]: consumer closed" in log and "Traceback" not in log
