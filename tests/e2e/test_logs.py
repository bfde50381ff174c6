"""One grep on a trace id follows a message through every service's JSON log lines; no text or token is logged."""

import json
import uuid

import pytest

from infra.process import wait_until

from .outage import QUICK_STORE_RETRIES, restore

SECRET_TEXT = "text-that-must-never-be-logged"


@pytest.fixture(scope="module")
def store(killable_store):
    """The store this module takes away to dead-letter a message."""
    return killable_store


@pytest.fixture(scope="module")
def stack(stack_factory, store):
    """clientB's consumer, the producer and the operator server, with quick store retries."""
    return stack_factory(clients=("clientB",), mongo_uri=store.uri, **QUICK_STORE_RETRIES)


def send_traced(stack, trace_id: str, text: str) -> dict:
    """Send clientA -> clientB with an X-Request-Id; the 202's body."""
    reply = stack.api.post("/send-message", {"to": "clientB", "message": text},
                           headers={**stack.api.as_("clientA"), "X-Request-Id": trace_id})
    assert reply.status == 202 and reply.headers["X-Request-Id"] == trace_id, reply.body
    return reply.body


def lines_with(stack, needle: str) -> list[dict]:
    """Every log line of the stack's processes that holds `needle`, parsed (each must be one JSON object)."""
    found = []
    for process in stack.processes:
        for line in process.log_path.read_text(errors="replace").splitlines():
            if needle in line:
                found.append({**json.loads(line), "process": process.name})
    return found


def wait_for_lines(stack, needle: str, expected: list[tuple[str, str]], timeout: float) -> None:
    """Wait until the stack's logs hold each expected (process, message) line naming `needle` (the HTTP servers
    write their lines in batches, within 0.1 s)."""
    wait_until(lambda: set(expected) <= set(messages_of(lines_with(stack, needle))), timeout=timeout,
               what=f"the lines {expected}")


def messages_of(lines: list[dict]) -> list[tuple[str, str]]:
    """(process, message) of each line."""
    return [(line["process"], line["message"]) for line in lines]


def about_one(line: dict, message_id: str) -> dict:
    """A line about one message as it would read alone: a batch's line (its lists) narrowed to that message."""
    if "messageIds" not in line or message_id not in line["messageIds"]:
        return line
    place = line["messageIds"].index(message_id)
    partition, offset = line["positions"][place].split(":")
    return {**{name: value for name, value in line.items() if name not in ("messageIds", "traceIds", "positions")},
            "messageId": message_id, "traceId": line["traceIds"][place], "partition": int(partition), "offset": int(offset)}


def in_order(lines: list[dict], expected: list[tuple[str, str]], message_id: str, together: int = 1) -> list[dict]:
    """The lines about the message (those naming it) in the expected order, once each; their times never go back.

    The last `together` lines may come in any order among themselves (a replay is published before it
    is recorded as done, so the consumer may store it first). Other lines may carry the trace id too:
    anything logged while its request was handled does.
    """
    lines = [about_one(line, message_id) for line in lines]
    lines = [line for line in lines if "messageId" in line]
    assert sorted(messages_of(lines)) == sorted(expected), messages_of(lines)
    ordered = sorted(lines, key=lambda line: expected.index((line["process"], line["message"])))
    times = [line["time"] for line in ordered]
    sequence = times[:len(times) - together] + [min(times[len(times) - together:])]
    assert sequence == sorted(sequence), [(line["message"], line["time"]) for line in ordered]
    return ordered


def test_a_stored_message_is_followed_from_http_to_the_store_by_its_trace_id(stack):
    trace_id = f"trace-{uuid.uuid4().hex}"
    accepted = send_traced(stack, trace_id, f"{SECRET_TEXT} stored")
    expected = [("producer", "message accepted"), ("consumer-clientB", "messages stored")]
    wait_for_lines(stack, trace_id, expected, timeout=30)
    lines = in_order(lines_with(stack, trace_id), expected, accepted["messageId"])
    assert {(line["messageId"], line["traceId"]) for line in lines} == {(accepted["messageId"], trace_id)}
    assert lines[0]["partition"] == lines[1]["partition"] == accepted["partition"]
    assert lines[0]["offset"] == lines[1]["offset"] == accepted["offset"]


def test_a_dead_lettered_message_is_followed_through_the_projection_and_a_replay(stack, store):
    store.kill()
    wait_until(lambda: stack.api.get("/ready").body["dependencies"]["mongodb"] == "down", timeout=20,
               what="/ready to report the store down")
    trace_id = f"trace-{uuid.uuid4().hex}"
    accepted = send_traced(stack, trace_id, f"{SECRET_TEXT} dead-lettered")
    stack.dead_letters_of({(accepted["partition"], accepted["offset"])}, timeout=90)
    restore(stack, store)
    wait_until(lambda: ("consumer-clientB", "failure recorded") in messages_of(lines_with(stack, trace_id)), timeout=60,
               what="the projector's line about the failure")
    listed = lambda: stack.operator.get("/failed-messages", **{"from": "clientA"}).body
    wait_until(lambda: len(listed()) == 1, timeout=30, what="the failure listed")
    [failure] = listed()
    assert failure["traceId"] == trace_id
    replayed = stack.operator.post("/failed-messages/replay", {"ids": [failure["id"]]},
                                   headers=stack.operator.as_("ops"))
    assert replayed.body["done"] == [failure["id"]]
    expected = [("producer", "message accepted"), ("consumer-clientB", "message dead-lettered"),
                ("consumer-clientB", "failure recorded"), ("operator", "failure replayed"),
                ("consumer-clientB", "messages stored")]
    wait_for_lines(stack, trace_id, expected, timeout=30)
    lines = in_order(lines_with(stack, trace_id), expected, accepted["messageId"], together=2)
    assert {line["messageId"] for line in lines} == {accepted["messageId"]}
    assert lines[1]["errorType"] == "StoreUnavailable" and lines[3]["by"] == "ops"


def test_no_log_line_holds_a_message_text_or_a_token(stack):
    send_traced(stack, f"trace-{uuid.uuid4().hex}", f"{SECRET_TEXT} once more")
    secrets = [SECRET_TEXT, *stack.api.tokens.values()]
    for process in stack.processes:
        text = process.log_path.read_text(errors="replace")
        assert not [secret for secret in secrets if secret in text], process.name
        # Every line is one JSON object, but the markers the test harness writes when it starts a process.
        assert all(line.startswith("{") for line in text.splitlines() if line.strip() and not line.startswith("--- ")), \
            process.name


def test_requests_are_not_logged_line_by_line_unless_the_access_log_is_asked_for(stack):
    send_traced(stack, f"trace-{uuid.uuid4().hex}", "one more request")
    assert stack.operator.get("/failed-messages", **{"from": "clientA"}).status == 200
    access_lines = [(process.name, line) for process in stack.processes
                    for line in process.log_path.read_text(errors="replace").splitlines() if '"gunicorn.access"' in line]
    assert access_lines == []  # PRODUCER_ACCESS_LOG=1 turns them on; tests/e2e/test_identities.py reads them
