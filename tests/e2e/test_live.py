"""GET /stream on the real stack: messages arrive once stored, only the caller's, and a resume misses nothing."""

import base64
import json
import signal
import socket
import time
import urllib.request

import pytest
from confluent_kafka import Producer
from pymongo import MongoClient

from infra.process import wait_until
from producer_service.config import DEFAULT_WORKERS
from shared_adapters.mongo_packed import unpack
from shared_domain.clock import utc_now
from shared_domain.failures import SourcePosition
from shared_domain.message import Message
from shared_domain.stored_events import encode_stored_event
from tests.support.sse import SseStream


@pytest.fixture(scope="module")
def stack(stack_factory):
    """Producer plus a consumer for all clients; at most 2 streams per client per process."""
    return stack_factory(clients=("*",), STREAM_LIMIT_PER_CLIENT=2, STREAM_HEARTBEAT_S=1)


def open_stream(stack, client: str, last_event_id: str | None = None, **params) -> SseStream:
    """An open stream of `client`, past its first (position) event."""
    stream = SseStream(stack.api.base_url, stack.api.tokens[client], last_event_id, **params)
    assert stream.status == 200, stream.error_body()
    first = stream.next_event()
    assert first.kind == "position" and first.id
    return stream


def send(stack, sender: str, recipient: str, text: str) -> str:
    """Send a message and return its id."""
    reply = stack.api.send(sender, recipient, text)
    assert reply.status == 202, reply.body
    return reply.body["messageId"]


def test_a_stream_shows_each_stored_message_of_the_caller_and_nobody_elses(stack):
    streams = {client: open_stream(stack, client) for client in ("clientA", "clientB", "clientC")}
    try:
        assert streams["clientB"].headers["Content-Type"].startswith("text/event-stream")
        assert streams["clientB"].headers["Cache-Control"] == "no-cache"
        assert streams["clientB"].headers["X-Accel-Buffering"] == "no"
        to_b = send(stack, "clientA", "clientB", "hello B, live")
        to_c = send(stack, "clientA", "clientC", "a marker for C")
        [received] = streams["clientB"].messages_until(to_b)
        assert {key: received[key] for key in ("from", "to", "message")} == {
            "from": "clientA", "to": "clientB", "message": "hello B, live"}
        assert set(received) == {"messageId", "from", "to", "message", "sentAt"}
        assert [m["messageId"] for m in streams["clientA"].messages_until(to_c)] == [to_b, to_c], "the sender sees both"
        assert [m["messageId"] for m in streams["clientC"].messages_until(to_c)] == [to_c], "C never sees A to B"
    finally:
        for stream in streams.values():
            stream.close()


def test_the_chat_pages_session_cookie_opens_the_callers_stream_and_only_its_own(stack):
    cookies = {}
    for client in ("clientB", "clientC"):
        signed = stack.api.post("/session", {"name": client, "token": stack.api.tokens[client]}, headers={})
        assert signed.status == 201, signed.body
        cookies[client] = signed.headers["Set-Cookie"].split(";")[0]
    streams = {client: SseStream(stack.api.base_url, None, cookie=cookie) for client, cookie in cookies.items()}
    try:
        assert {client: stream.status for client, stream in streams.items()} == {"clientB": 200, "clientC": 200}
        to_b = send(stack, "clientA", "clientB", "hello B, through the page's session")
        to_c = send(stack, "clientA", "clientC", "a marker for C")
        assert [m["messageId"] for m in streams["clientB"].messages_until(to_b)] == [to_b]
        assert [m["messageId"] for m in streams["clientC"].messages_until(to_c)] == [to_c], "C never sees A to B"
    finally:
        for stream in streams.values():
            stream.close()
    forged = SseStream(stack.api.base_url, None, cookie="chat_session=not-a-session")
    assert forged.status == 401 and forged.error_body()["error"] == "unauthorized"
    forged.close()


def test_an_open_stream_ends_at_its_next_heartbeat_once_its_session_is_signed_out(stack):
    signed = stack.api.post("/session", {"name": "clientF", "token": stack.api.tokens["clientF"]}, headers={})
    cookie = signed.headers["Set-Cookie"].split(";")[0]
    stream = SseStream(stack.api.base_url, None, cookie=cookie)
    try:
        assert stream.status == 200 and stream.next_event().kind == "position"
        request = urllib.request.Request(stack.api.base_url + "/session", method="DELETE",
                                         headers={"Cookie": cookie, "X-CSRF-Token": signed.body["csrfToken"]})
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 204
        assert stream.next_event(timeout=10) is None, "the stream ends rather than goes on after sign-out"
    finally:
        stream.close()
    again = SseStream(stack.api.base_url, None, cookie=cookie)
    assert again.status == 401
    again.close()


def position_after_one_message(stack, client: str, sender: str) -> str:
    """Open `client`'s stream, receive one message from `sender`, hang up; return the position reached."""
    stream = open_stream(stack, client)
    try:
        stream.messages_until(send(stack, sender, client, "before the break"))
        return stream.last_id
    finally:
        stream.close()


def test_a_resume_sends_what_was_missed_once_then_goes_live(stack):
    resume_from = position_after_one_message(stack, "clientD", "clientE")
    missed = [send(stack, "clientE", "clientD", f"missed {n}") for n in range(3)]
    missed.append(send(stack, "clientD", "clientF", "sent by D meanwhile"))
    wait_until(lambda: len(stack.all_messages_as("clientD")) >= 5, timeout=20, what="the missed messages stored")
    resumed = open_stream(stack, "clientD", last_event_id=resume_from)
    try:
        after = send(stack, "clientE", "clientD", "after the resume")
        received = [m["messageId"] for m in resumed.messages_until(after)]
        assert sorted(received[:-1]) == sorted(missed) and received[-1] == after, received
    finally:
        resumed.close()


def test_after_parameter_resumes_like_last_event_id(stack):
    position = position_after_one_message(stack, "clientG", "clientH")
    second = send(stack, "clientH", "clientG", "two")
    resumed = open_stream(stack, "clientG", after=position)
    try:
        assert [m["messageId"] for m in resumed.messages_until(second)] == [second]
    finally:
        resumed.close()


def test_heartbeats_keep_an_idle_stream_open(stack):
    stream = SseStream(stack.api.base_url, stack.api.tokens["clientI"])
    try:
        stream.next_event()
        # STREAM_HEARTBEAT_S=1: comments arrive while nothing happens; no event, no end.
        with pytest.raises(TimeoutError):
            stream.next_event(timeout=2.5)
        assert not stream.ended
    finally:
        stream.close()


def test_forged_stored_events_beyond_the_message_topic_cannot_silence_a_stream(stack):
    stream = open_stream(stack, "clientC")
    try:
        first = stack.api.send("clientA", "clientC", "before the forgeries")
        assert first.status == 202, first.body
        stream.messages_until(first.body["messageId"])
        partition, messages_topic = first.body["partition"], stack.topics[0]
        forgeries = [SourcePosition(messages_topic, partition, 2**62),
                     SourcePosition(f"{messages_topic}-x", partition, 2**62), SourcePosition(messages_topic, 999, 2**62)]
        # Keyed like the consumer's stored events, so they sit in the same partition, ahead of the genuine one.
        producer = Producer({"bootstrap.servers": stack.kafka, "acks": "all"})
        for n, source in enumerate(forgeries):
            forged = Message(f"forged-{n}", "clientA", "clientC", "forged", utc_now())
            value = encode_stored_event(forged, source)
            producer.produce(stack.env["STORED_EVENTS_TOPIC"], key=b"clientC", value=value)
        assert producer.flush(10) == 0
        genuine = send(stack, "clientA", "clientC", "after the forgeries")
        assert [m["messageId"] for m in stream.messages_until(genuine)] == [genuine]
        position = json.loads(base64.urlsafe_b64decode(stream.last_id + "=" * (-len(stream.last_id) % 4)))
        assert position["clientC"] < 2**62, "the resume id carries no forged offset"
    finally:
        stream.close()


def test_the_conversation_list_and_a_stream_start_come_from_the_views_not_the_history(stack):
    first, second = send(stack, "clientJ", "clientK", "one"), send(stack, "clientJ", "clientK", "two")
    reply = send(stack, "clientK", "clientJ", "a reply from K")
    listed = lambda: stack.api.get("/conversations", stack.api.as_("clientK")).body
    wait_until(lambda: listed() == [{"with": "clientJ", "latest": listed()[0]["latest"], "preview": "a reply from K",
                                     "unread": 2}], timeout=20, what="K's conversation with J, from the views")
    with MongoClient(stack.env["MONGODB_URI"]) as client:
        database = client[stack.env["MONGODB_DATABASE"]]
        stored = {m["messageId"]: m for m in database.messages.find({"messageId": {"$in": [first, second, reply]}})}
        views = {view["_id"]: unpack(view) for view in database.conversation_views.find({"_id": {"$regex": "^(in|out)/clientK"}})}
        # A message in the history that no consumer stored (so no view has it) is not what the list reads.
        database.messages.insert_one({**stored[first], "_id": "clientL/planted", "messageId": "planted",
                                      "from": "clientL", "conversation": "clientK|clientL"})
    assert [entry["with"] for entry in listed()] == ["clientJ"]
    assert stored[second]["source"]["offset"] == views["in/clientK"]["offset"]
    stream = SseStream(stack.api.base_url, stack.api.tokens["clientK"])
    try:
        start = stream.next_event()
        offsets = json.loads(base64.urlsafe_b64decode(start.id + "=" * (-len(start.id) % 4)))
        assert offsets == {"clientK": stored[second]["source"]["offset"], "clientJ": stored[reply]["source"]["offset"]}
    finally:
        stream.close()


@pytest.mark.parametrize("token, status, error", [
    (None, 401, "unauthorized"), ("not-a-token", 401, "unauthorized"), ("ops", 403, "forbidden")])
def test_a_stream_needs_a_client_token(stack, token, status, error):
    stream = SseStream(stack.api.base_url, stack.api.tokens.get(token, token))
    assert (stream.status, stream.error_body()["error"]) == (status, error)


@pytest.mark.parametrize("position", ["garbage!", "eyJ4IjoiMSJ9", "e30" * 2000, "W10", "eyJjbGllbnRCIjotMX0"])
def test_a_position_the_service_did_not_issue_is_a_400(stack, position):
    stream = SseStream(stack.api.base_url, stack.api.tokens["clientJ"], position)
    assert (stream.status, stream.error_body()["error"]) == (400, "invalid_position")


def test_streams_beyond_the_per_client_limit_get_429(stack):
    # Two workers with room for two each: of five streams one at least is refused, whichever worker takes
    # each, and even while a stream the client closed in an earlier test still counts on one of them.
    streams = [SseStream(stack.api.base_url, stack.api.tokens["clientK"]) for _ in range(5)]
    try:
        statuses = [stream.status for stream in streams]
        assert 200 in statuses and 429 in statuses, statuses
        assert next(s for s in streams if s.status == 429).error_body()["error"] == "too_many_streams"
    finally:
        for stream in streams:
            stream.close()


def test_sigterm_ends_open_streams_and_the_producer_exits_promptly(stack):
    stream = open_stream(stack, "clientL")
    # Many more streams, so that ending them all takes a while: the master's own SIGTERM to the
    # workers then lands while they are at it (it once deadlocked a worker there).
    many = [_raw_stream(stack, client) for client in "MNOPQRSTUVWXYZ" for _ in range(4)]
    opened = [sock for sock, status in many if status == 200]
    assert len(opened) >= 28, "at least two streams per client (the per-process limit) opened"
    producer = stack.producer
    began = time.monotonic()
    producer._signal_group(signal.SIGTERM)
    assert stream.next_event(timeout=15) is None, "the stream ends rather than hangs"
    wait_until(lambda: not producer.alive, timeout=15, what="the producer to exit")
    assert time.monotonic() - began < 10
    for sock, _ in many:
        sock.close()


def _raw_stream(stack, client: str) -> tuple[socket.socket, int]:
    """A stream opened on a plain socket, left unread; returns it with the answer's status."""
    port = int(stack.api.base_url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(f"GET /stream HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {stack.api.tokens['client' + client]}"
                 f"\r\n\r\n".encode())
    head = b""
    while b"\r\n" not in head:
        head += sock.recv(1024)
    return sock, int(head.split()[1])

