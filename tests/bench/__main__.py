"""`make bench`: speed of the running system on real servers, each figure beside a baseline measured in the same run.

Stages, each on topics and a database of its own so they do not disturb each other:
1. Single sends: wrk POSTs /send-message to our producer and to a bare Flask endpoint under the
   same gunicorn settings, interleaved, BENCH_ROUNDS (3) runs of BENCH_SECONDS (5) each, at
   each of BENCH_CONNECTIONS (16,64) keep-alive connections; medians and their ratio.
   Then POST /send-messages with 100 messages per request.
2. Consumer: BENCH_BACKLOG (20000) messages wait on a topic; a consumer for all clients stores
   them, interleaved with a raw insert_many of the same documents (500 per batch, same indexes).
3. Stored latency: BENCH_RATE (200) messages a second for BENCH_LATENCY_SECONDS (15), open loop.
4. Live fan-out: BENCH_SUBSCRIBERS (1000) open streams while BENCH_RATE messages a second flow,
   measured after BENCH_WARMUP_SECONDS (5) of the same sending (its figure printed apart).
5. End to end: wrk's single sends with the consumer storing them, until every one is stored; the CPU
   per message of each part against the bare endpoint's per request, interleaved (end_to_end.py).
6. Replay of BENCH_REPLAY (1000) dead letters after a store outage.
7. /health beside slowloris connections (slow_clients.py).
8. Scale: BENCH_SCALE_CLIENTS (10000) clients, the store filled to each of BENCH_SCALE_MESSAGES
   (20000,200000) in turn; what a client waits for at each size, and the ratio (scale.py).
BENCH_STAGES (send,consumer,latency,fanout,e2e,replay,slow,scale) picks stages; every figure is printed as it is
measured, with what bounded it (the machine's CPU, one part's, or the waits between parts).
PRODUCER_WORKERS (2) and PRODUCER_THREADS (32) set the gunicorn workers and threads of our producer and of
the bare endpoint alike.
"""

import os
import sys
import tempfile
import uuid
from pathlib import Path
from urllib.parse import urlparse

from pymongo import MongoClient

from consumer_service.config import default_group_id
from infra.ferretdb import FerretDBServer
from infra.kafka import KafkaServer
from infra.process import free_ports, wait_until
from tests.support import contract
from tests.support.services import service_env, start_consumer, start_producer
from tests.support.stack import register

from . import consumer_load, end_to_end, fanout, http_load, replay, scale, slow_clients, stored_latency
from .progress import CommittedProgress
from .wrk import ensure_wrk

STAGES = ("send", "consumer", "latency", "fanout", "e2e", "replay", "slow", "scale")
CLIENTS = ["sender", "batcher", "timer", "outage", "receiver", *(f"receiver{n}" for n in range(7)),
           *(f"client{n}" for n in range(10))]


def main() -> int:
    """Start private servers, run every stage, print the figures, stop everything."""
    contract.ENABLED = False  # the bench measures the services; the tests check their answers
    rounds = int(os.environ.get("BENCH_ROUNDS", "3"))
    stages = set(os.environ.get("BENCH_STAGES", ",".join(STAGES)).split(","))
    ensure_wrk()
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        root = Path(scratch)
        kafka = KafkaServer(*free_ports(2), root / "kafka")
        mongo = FerretDBServer(free_ports(1)[0], root / "mongo")
        processes = []
        try:
            kafka.start()
            mongo.start()
            name = f"bench_{uuid.uuid4().hex[:8]}"
            tokens = register(mongo.uri, name, CLIENTS)

            def env_for(stage: str) -> dict:
                # A rate limit no benchmark reaches: the limiter's cost is measured, its refusals are not.
                return service_env(kafka.bootstrap_servers, mongo.uri, name, (f"{name}-{stage}", f"{name}-{stage}-dlq"),
                                   SEND_RATE_LIMIT=10**9)

            print(f"make bench: {rounds} interleaved rounds per comparison, medians; "
                  f"{http_load.producer_workers()} gunicorn workers x {http_load.producer_threads()} threads")
            if "send" in stages:
                http_load.run(env_for("http"), root, tokens, rounds, float(os.environ.get("BENCH_SECONDS", "5")),
                              [int(n) for n in os.environ.get("BENCH_CONNECTIONS", "16,64").split(",")], kafka.pid)
            if "consumer" in stages:
                consumer_load.run(env_for("backlog"), root, mongo.uri, rounds,
                                  int(os.environ.get("BENCH_BACKLOG", "20000")), mongo.pid)
            if "scale" in stages:
                scale_db = f"{name}_scale"
                sizes = tuple(int(n) for n in os.environ.get("BENCH_SCALE_MESSAGES", "20000,200000").split(","))
                scale.run(service_env(kafka.bootstrap_servers, mongo.uri, scale_db, (f"{name}-scale", f"{name}-scale-dlq"),
                                      SEND_RATE_LIMIT=10**9),
                          root, mongo.uri, scale_db, int(os.environ.get("BENCH_SCALE_CLIENTS", "10000")), sizes,
                          http_load.producer_workers())
            if not stages & {"latency", "fanout", "e2e", "replay", "slow"}:
                return 0
            env = env_for("e2e")
            processes.append(start_consumer(env, "*", root))
            producer, api = start_producer(env, root, tokens, http_load.producer_workers())
            processes.append(producer)
            wait_until(lambda: api.get("/ready").status == 200, timeout=60, what="producer /ready", process=producer)
            database = MongoClient(mongo.uri, tz_aware=True)[name]
            parts = {"producer": producer.pid, "consumer": processes[0].pid, "Kafka": kafka.pid, "FerretDB": mongo.pid}
            progress = CommittedProgress(kafka.bootstrap_servers, default_group_id(env["MESSAGES_TOPIC"], "*"),
                                         env["MESSAGES_TOPIC"])
            if "latency" in stages:
                # Steady state is measured: every partition, and the consumer's topics, in use once first.
                for n in range(20):
                    api.send("sender", f"client{n % 7}", "warm-up")
                end = progress.end()
                wait_until(lambda: progress.committed() >= end, timeout=60, what="the warm-up messages committed")
                stored_latency.run(api, database, float(os.environ.get("BENCH_RATE", "200")),
                                   float(os.environ.get("BENCH_LATENCY_SECONDS", "15")), progress, parts)
            if "fanout" in stages:
                fanout.run(api, mongo.uri, name, parts, int(os.environ.get("BENCH_SUBSCRIBERS", "1000")),
                           float(os.environ.get("BENCH_RATE", "200")), float(os.environ.get("BENCH_LATENCY_SECONDS", "15")),
                           float(os.environ.get("BENCH_WARMUP_SECONDS", "5")))
            if "e2e" in stages:
                bare, bare_url = http_load.start_bare(env, root)
                try:
                    end_to_end.run(api, bare_url, bare.pid, parts, progress, rounds, float(os.environ.get("BENCH_SECONDS", "5")),
                                   [int(n) for n in os.environ.get("BENCH_CONNECTIONS", "16,64").split(",")])
                finally:
                    bare.stop()
            progress.close()
            if "replay" in stages:
                replay.run(api, database, mongo, env, int(os.environ.get("BENCH_REPLAY", "1000")))
            if "slow" in stages:
                slow_clients.run(urlparse(api.base_url).port)
        finally:
            for process in processes:
                process.stop()
            mongo.stop()
            kafka.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
