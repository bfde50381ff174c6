"""`make bench`: throughput and latency of the running pipeline on real servers, printed as figures.

BENCH_MESSAGES (default 2000) messages are sent by BENCH_CONCURRENCY (default 16) threads to a
producer under gunicorn; a consumer for all clients stores them. Reports accepted/s, the
latency of POST /send-message, how long until every message was stored, and the same count
sent through POST /send-messages in batches of 100. Then BENCH_REPLAY (default 1000) messages
are sent while the store is down, and the time `consumer-service dlq replay` takes to put them
back is reported. Last, /health latency alone and beside slowloris connections (tests/bench_slow_clients.py).
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlparse

from pymongo import MongoClient

from infra.ferretdb import FerretDBServer
from infra.kafka import KafkaServer
from infra.process import free_ports, wait_until
from tests import bench_slow_clients
from tests.support.services import BIN, service_env, start_consumer, start_producer
from tests.support.stack import dead_letters_of, register


def main() -> int:
    """Start a private stack, run the load, print the figures, stop everything."""
    count = int(os.environ.get("BENCH_MESSAGES", "2000"))
    concurrency = int(os.environ.get("BENCH_CONCURRENCY", "16"))
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        root = Path(scratch)
        kafka = KafkaServer(*free_ports(2), root / "kafka")
        mongo = FerretDBServer(free_ports(1)[0], root / "mongo")
        processes = []
        try:
            kafka.start()
            mongo.start()
            suffix = uuid.uuid4().hex[:8]
            env = service_env(kafka.bootstrap_servers, mongo.uri, f"bench_{suffix}", (f"bench-{suffix}", f"bench-dlq-{suffix}"))
            processes.append(start_consumer(env, "*", root))
            clients = [f"client{n}" for n in range(10)] + ["warmup", "outage", "batcher"]
            producer, api = start_producer(env, root, register(mongo.uri, f"bench_{suffix}", clients))
            processes.append(producer)
            wait_until(lambda: api.get("/ready").status == 200, timeout=60, what="producer /ready", process=producer)
            database = MongoClient(mongo.uri)[f"bench_{suffix}"]
            _run(api, database, count, concurrency)
            _run_replay(api, database, mongo, env, int(os.environ.get("BENCH_REPLAY", "1000")), concurrency)
            bench_slow_clients.run(urlparse(api.base_url).port)
        finally:
            for process in processes:
                process.stop()
            mongo.stop()
            kafka.stop()
    return 0


def _run(api, database, count: int, concurrency: int) -> None:
    """Send `count` messages and report the figures."""
    def send(n: int) -> float:
        began = time.perf_counter()
        reply = api.send(f"client{n % 10}", f"client{n % 7}", f"benchmark message {n}")
        if reply.status != 202:
            raise RuntimeError(f"send {n} got {reply.status}: {reply.body}")
        return time.perf_counter() - began

    api.send("warmup", "warmup", "warm-up")
    began = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        latencies = sorted(pool.map(send, range(count)))
    sent_in = time.perf_counter() - began
    wait_until(lambda: database.messages.count_documents({"from": {"$ne": "warmup"}}) >= count,
               timeout=300, interval=0.1, what=f"{count} stored messages")
    stored_in = time.perf_counter() - began
    quantile = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000
    print(f"messages:             {count} ({concurrency} concurrent senders, 2 gunicorn workers x 8 threads)")
    print(f"accepted (202):       {count / sent_in:8.0f} msg/s  ({sent_in:.2f} s)")
    print(f"send latency:         p50 {quantile(0.50):.1f} ms  p95 {quantile(0.95):.1f} ms  "
          f"p99 {quantile(0.99):.1f} ms  mean {statistics.mean(latencies) * 1000:.1f} ms")
    print(f"all stored after:     {stored_in:.2f} s  ({count / stored_in:.0f} msg/s end to end)")
    _run_batches(api, database, count, concurrency)


def _run_batches(api, database, count: int, concurrency: int, size: int = 100) -> None:
    """Send `count` more messages through POST /send-messages in batches of `size`."""
    def send(first: int) -> None:
        batch = [{"from": "batcher", "to": f"client{n % 7}", "message": f"batched {n}"} for n in range(first, first + size)]
        reply = api.post("/send-messages", batch)
        if reply.status != 202:
            raise RuntimeError(f"batch at {first} got {reply.status}")

    began = time.perf_counter()
    with ThreadPoolExecutor(max(1, concurrency // 4)) as pool:
        list(pool.map(send, range(0, count, size)))
    sent_in = time.perf_counter() - began
    wait_until(lambda: database.messages.count_documents({"from": "batcher"}) >= count,
               timeout=300, interval=0.1, what=f"{count} batched messages stored")
    print(f"batched ({size}/request): {count / sent_in:8.0f} msg/s accepted, all stored after "
          f"{time.perf_counter() - began:.2f} s")


def _run_replay(api, database, mongo, env: dict, count: int, concurrency: int) -> None:
    """Dead-letter `count` messages by stopping the store, bring it back, and time their replay."""
    mongo.stop()
    with ThreadPoolExecutor(concurrency) as pool:
        replies = list(pool.map(lambda n: api.send("outage", "client1", f"during the outage {n}"), range(count)))
    if any(reply.status != 202 for reply in replies):
        raise RuntimeError("a send during the store outage was not accepted")
    dead_letters_of(env["KAFKA_BOOTSTRAP_SERVERS"], env["DEAD_LETTER_TOPIC"],
                    {(reply.body["partition"], reply.body["offset"]) for reply in replies}, timeout=300)
    mongo.start()
    wait_until(lambda: database.failed_messages.count_documents({"from": "outage"}) >= count,
               timeout=300, interval=0.2, what=f"{count} failures projected")
    collection = database.failed_messages.count_documents({})
    began = time.perf_counter()
    subprocess.run([str(BIN / "consumer-service"), "dlq", "replay", "--from", "outage", "--by", "bench"],
                   env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    replayed_in = time.perf_counter() - began
    wait_until(lambda: database.messages.count_documents({"from": "outage"}) >= count,
               timeout=300, interval=0.1, what=f"{count} replayed messages stored")
    print(f"replay after outage:  {count} records in {replayed_in:.2f} s ({count / replayed_in:.0f} records/s, "
          f"failed_messages holding {collection}), all stored after {time.perf_counter() - began:.2f} s")


if __name__ == "__main__":
    sys.exit(main())
