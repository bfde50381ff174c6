"""The scale stage: what a client waits for, at 20,000 and at 200,000 stored messages among 10,000 clients.

Valid envelopes go straight to Kafka (keyed by recipient, as the producer writes them); a consumer
for all clients stores them and its views projector keeps the conversation views. Once both have
committed everything, sampled clients ask for their conversation list, the newest page of their
latest conversation and a stream's start; the first two clients, who talk to each other a lot,
ask for the 10th older page of their conversation and the first and 10th page of all their
messages; and the store is asked for messages by `_id`. Then ten times the history is added and
the same is asked again. Each figure is printed with its target.
"""

import random
import statistics
import time
import urllib.request
from pathlib import Path

from pymongo import MongoClient

from consumer_service.config import default_group_id
from infra.process import free_ports, wait_until
from shared_domain.clock import utc_now
from shared_domain.documents import MESSAGES_COLLECTION
from shared_domain.message import ClientId, Message, MessageText, message_key, new_message_id
from shared_domain.partitioning import partition_of
from tests.support.api import Api
from tests.support.metrics import value
from tests.support.services import start_consumer, start_producer
from tests.support.sse import SseStream
from tests.support.stack import register

from .consumer_load import _produce
from .progress import CommittedProgress
from .verdict import verdict

SAMPLED = 50  # clients measured (registered, so they can sign requests)
# Each client talks with its two neighbours in a ring, and the first messages go round it once each way, so
# that a client has the same two conversations at both sizes: what a request returns stays the same while the
# history behind it grows tenfold.
NEIGHBOURS = (-1, 1)
ROUNDS = 3  # requests of each kind per sampled client and size
# The first two clients exchange every BUSY_EVERY-th message, so that their conversation and their messages
# have ten pages and more at both sizes.
BUSY_EVERY = 20
DEEP_REQUESTS = 60  # requests for each deep page per size
DEEP_KINDS = ("10th older page", "feed first page", "feed 10th page")
P99_TARGET_MS = 100.0
GROWTH_TARGET = 1.5


def run(env: dict, logs: Path, mongo_uri: str, database: str, clients: int, sizes: tuple[int, ...], workers: int) -> None:
    """Fill the store to each size in turn and print what the sampled clients waited for."""
    names = [f"u{n:05d}" for n in range(clients)]
    chooser = random.Random(20261205)
    peers = {name: [names[(n + step) % clients] for step in NEIGHBOURS] for n, name in enumerate(names)}
    sampled = names[:SAMPLED]
    tokens = register(mongo_uri, database, sampled, operator=False)
    consumer = start_consumer({**env, "PROJECT_DEAD_LETTERS": "0"}, "*", logs, name="scale-consumer")
    producer, api = start_producer(env, logs, tokens, workers)
    mongo = MongoClient(mongo_uri, tz_aware=True)
    stored = []
    try:
        wait_until(lambda: api.get("/ready").status == 200, timeout=60, what="producer /ready", process=producer)
        figures = {}
        for size in sizes:
            batch = [_message(chooser, names, peers, len(stored) + n) for n in range(size - len(stored))]
            began = time.perf_counter()
            _produce(env["KAFKA_BOOTSTRAP_SERVERS"], env["MESSAGES_TOPIC"], batch)
            stored += batch
            try:
                consumer_s, views_s = _wait_absorbed(env, began, consumer)
            except TimeoutError as error:  # the figures of a store not filled are not measured; the other stages go on
                print(f"scale: {len(stored)} messages among {clients} clients: NOT MEASURED, {str(error).split(';')[0]}")
                return
            print(f"scale: {len(stored)} messages among {clients} clients: stored {len(batch)} in {consumer_s:.0f} s "
                  f"({len(batch) / consumer_s:.0f}/s), in the views after {views_s:.0f} s ({len(batch) / views_s:.0f}/s)")
            figures[size] = _measure(api, tokens, sampled, mongo[database][MESSAGES_COLLECTION], chooser, stored)
            _print(size, figures[size])
        _fetch_ratio(env, logs, sampled[0])
        if len(sizes) < 2:
            return  # growth is measured between the first size and the last
        small, large = figures[sizes[0]], figures[sizes[-1]]
        for kind, bounded in (("conversations", True), ("stream start", True), ("newest page", True),
                              *((kind, True) for kind in DEEP_KINDS), ("lookup by _id", False)):
            ratio = statistics.quantiles(large[kind][0], n=100)[98] / statistics.quantiles(small[kind][0], n=100)[98]
            target = f"target <= {GROWTH_TARGET}x: {verdict(ratio <= GROWTH_TARGET)}" if bounded else "no target"
            print(f"scale: {kind} p99 at {sizes[-1]} / at {sizes[0]}: {ratio:.3f}x ({target})")
    finally:
        mongo.close()
        producer.stop()
        consumer.stop()


def _fetch_ratio(env: dict, logs: Path, client: str) -> None:
    """Start a consumer for one client (a group of its own) and print the share of the topic it fetched."""
    port = free_ports(1)[0]
    topic = env["MESSAGES_TOPIC"]
    group = f"{default_group_id(topic, client)}-fetch"
    consumer = start_consumer({**env, "CONSUMER_GROUP_ID": group, "CONSUMER_HEALTH_PORT": str(port),
                               "PROJECT_DEAD_LETTERS": "0", "PROJECT_VIEWS": "0"}, client, logs, name="scale-fetch")
    progress = CommittedProgress(env["KAFKA_BOOTSTRAP_SERVERS"], group, topic)
    try:
        served = partition_of(client.encode(), progress.partitions)
        end = progress.ends()[served]
        wait_until(lambda: progress.committed() >= end, timeout=600, interval=0.5, what=f"{client}'s partition read",
                   process=consumer)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
            fetched = value(answer.read().decode(), "consumer_records_total", consumer=f"consumer[{client}]")
        total = sum(progress.ends().values())
    finally:
        progress.close()
        consumer.stop()
    share = fetched / total
    print(f"scale: a consumer for {client} alone fetched {fetched:.0f} of the topic's {total} records ({share:.2f}; "
          f"target <= 1.2/P = {1.2 / progress.partitions:.2f}: {verdict(share <= 1.2 / progress.partitions)})")


def _message(chooser: random.Random, names: list[str], peers: dict[str, list[str]], number: int) -> Message:
    """The `number`th message: between the two busy clients, or round the ring once each way first, then from a
    random client to a random peer."""
    rounds = len(names) * len(NEIGHBOURS)
    ring = number - number // BUSY_EVERY  # the sampled clients' ring messages come early: they have both conversations
    if number % BUSY_EVERY == BUSY_EVERY - 1:
        sender, recipient = chooser.sample(names[:2], 2)
    elif ring < rounds:
        sender = names[ring % len(names)]
        recipient = peers[sender][ring // len(names)]
    else:
        sender = chooser.choice(names)
        recipient = chooser.choice(peers[sender])
    return Message(new_message_id(), ClientId(sender), ClientId(recipient),
                   MessageText(f"a message of ordinary length, number {chooser.randrange(10**6)}"), utc_now())


def _wait_absorbed(env: dict, began: float, consumer) -> tuple[float, float]:
    """Seconds from `began` until the consumer, then the views projector, committed all there is."""
    bootstrap, topic = env["KAFKA_BOOTSTRAP_SERVERS"], env["MESSAGES_TOPIC"]
    stored_topic = env["STORED_EVENTS_TOPIC"]
    messages = CommittedProgress(bootstrap, default_group_id(topic, "*"), topic)
    views = CommittedProgress(bootstrap, f"{stored_topic}.views", stored_topic)
    try:
        end = messages.end()
        wait_until(lambda: messages.committed() >= end, timeout=3600, interval=0.5, what="the messages stored",
                   process=consumer)
        consumer_s = time.perf_counter() - began
        end = views.end()
        wait_until(lambda: views.committed() >= end, timeout=3600, interval=0.5, what="the views projected",
                   process=consumer)
        return consumer_s, time.perf_counter() - began
    finally:
        messages.close()
        views.close()


def _measure(api: Api, tokens: dict, sampled: list[str], messages, chooser: random.Random,
             stored: list[Message]) -> dict[str, tuple[list[float], list[int]]]:
    """{kind: (milliseconds, items returned)} over ROUNDS requests of each kind per sampled client."""
    figures: dict[str, tuple[list[float], list[int]]] = {
        kind: ([], []) for kind in ("conversations", "newest page", "stream start", "lookup by _id", *DEEP_KINDS)}

    def timed(kind: str, call) -> object:
        began = time.perf_counter()
        result = call()
        figures[kind][0].append((time.perf_counter() - began) * 1000)
        return result

    for _ in range(ROUNDS):
        for client in sampled:
            headers = api.as_(client)
            listed = timed("conversations", lambda: api.get("/conversations", headers))
            assert listed.status == 200, listed.body
            figures["conversations"][1].append(len(listed.body))
            partner = listed.body[0]["with"] if listed.body else client
            page = timed("newest page", lambda: api.get("/messages", headers, order="desc", limit=50, **{"with": partner}))
            assert page.status == 200, page.body
            figures["newest page"][1].append(len(page.body))
            stream = timed("stream start", lambda: _stream_start(api, tokens[client]))
            figures["stream start"][1].append(stream)
            message = chooser.choice(stored)
            found = timed("lookup by _id", lambda: messages.find_one(
                {"_id": message_key(message.sender, message.message_id)}))
            figures["lookup by _id"][1].append(1 if found else 0)
    busy, other = sampled[:2]
    limit = max(1, min(50, len(stored) // BUSY_EVERY // 11))  # ten pages and more of the busy conversation
    deep = {"10th older page": _tenth_page(api, busy, order="desc", limit=limit, **{"with": other}),
            "feed first page": f"/messages?order=desc&limit={limit}",
            "feed 10th page": _tenth_page(api, busy, order="desc", limit=limit)}
    for _ in range(DEEP_REQUESTS):
        for kind, path in deep.items():
            reply = timed(kind, lambda: api.get(path, api.as_(busy)))
            assert reply.status == 200, (kind, reply.status, reply.body)
            figures[kind][1].append(len(reply.body))
    return figures


def _tenth_page(api: Api, client: str, **params) -> str:
    """The path of the 10th page of a listing, found by following its next links."""
    reply = api.get("/messages", api.as_(client), **params)
    for _ in range(9):
        assert reply.status == 200 and "Link" in reply.headers, (reply.status, reply.body)
        path = reply.headers["Link"].split(">")[0].lstrip("<")
        reply = api.get(path, api.as_(client))
    return path


def _stream_start(api: Api, token: str) -> int:
    """Open a stream and read its first event (where it starts); 1 once it came."""
    stream = SseStream(api.base_url, token)
    try:
        assert stream.status == 200, stream.error_body()
        first = stream.next_event(timeout=30)
        assert first is not None and first.kind == "position"
        return 1
    finally:
        stream.close()


def _print(size: int, figures: dict[str, tuple[list[float], list[int]]]) -> None:
    """One line per kind: p50, p99 against the target, and the items a request returned (median)."""
    for kind, (milliseconds, items) in figures.items():
        if len(milliseconds) < 2:
            continue
        p50, p99 = statistics.median(milliseconds), statistics.quantiles(milliseconds, n=100)[98]
        target = f"target p99 < {P99_TARGET_MS:.0f} ms: {verdict(p99 < P99_TARGET_MS)}"
        print(f"scale: at {size}: {kind:14} p50 {p50:6.1f} ms  p99 {p99:6.1f} ms  ({target})  "
              f"items per request: median {statistics.median(items):.0f}, max {max(items)}")
