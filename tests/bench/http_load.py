"""The send figures: POST /send-message against a bare endpoint under the same gunicorn settings, and batches."""

import json
import statistics
from pathlib import Path

from consumer_service.infrastructure.kafka_io import ensure_topics
from infra.process import ManagedProcess, free_ports, wait_until
from tests.support.api import Api
from tests.support.services import BIN, start_producer

from .wrk import WrkResult, post_script, run_wrk

GUNICORN = [str(BIN / "gunicorn"), "-c", "python:producer_service.entrypoints.gunicorn_config"]
SINGLE = json.dumps({"to": "receiver", "message": "a benchmark message of ordinary length"})


def start_bare(env: dict, logs: Path) -> tuple[ManagedProcess, str]:
    """The bare endpoint under the producer's own gunicorn settings; returns the process and its URL."""
    port = free_ports(1)[0]
    argv = [*GUNICORN, "--bind", f"127.0.0.1:{port}", "tests.bench.bare_app:create_app()"]
    process = ManagedProcess("bare", argv, logs / f"bare-{port}.log", env={**env, "PRODUCER_WORKERS": "2"})
    process.start()
    base = f"http://127.0.0.1:{port}"
    wait_until(lambda: Api(base).get("/health").status == 200, timeout=30, what="bare /health", process=process)
    return process, base


def run(env: dict, logs: Path, tokens: dict, rounds: int, seconds: float, connections: list[int]) -> dict:
    """Interleave wrk runs on ours and the bare endpoint; print medians and ratios; return the figures."""
    ensure_topics(env["KAFKA_BOOTSTRAP_SERVERS"], [env["MESSAGES_TOPIC"]], 3, timeout=30)  # no consumer runs here
    producer, api = start_producer(env, logs, tokens)
    bare, bare_url = start_bare(env, logs)
    figures = {}
    try:
        wait_until(lambda: api.get("/ready").status == 200, timeout=60, what="producer /ready", process=producer)
        ours_script, bare_script = post_script(SINGLE, tokens["sender"]), post_script(SINGLE, None)
        for url, script in ((api.base_url, ours_script), (bare_url, bare_script)):
            run_wrk(url + "/send-message", script, connections[0], 2)  # warm-up: connections, caches, JIT-less paths
        for count in connections:
            ours, baseline = [], []
            for _ in range(rounds):
                ours.append(_checked(run_wrk(api.base_url + "/send-message", ours_script, count, seconds)))
                baseline.append(_checked(run_wrk(bare_url + "/send-message", bare_script, count, seconds)))
            figures[f"single_{count}"] = _print_pair(f"single send, {count} conns", ours, baseline)
        figures["batch"] = _run_batches(api, tokens, rounds, seconds)
    finally:
        producer.stop()
        bare.stop()
    return figures


def _run_batches(api: Api, tokens: dict, rounds: int, seconds: float, size: int = 100, connections: int = 8) -> float:
    """POST /send-messages with `size` messages per request; print the median messages/s accepted."""
    body = json.dumps([{"to": f"receiver{n % 7}", "message": f"batched benchmark message {n}"} for n in range(size)])
    script = post_script(body, tokens["batcher"])
    runs = [_checked(run_wrk(api.base_url + "/send-messages", script, connections, seconds)) for _ in range(rounds)]
    rate = statistics.median(run.requests_per_s for run in runs) * size
    p99 = statistics.median(run.p99_ms for run in runs)
    print(f"batch send ({size}/request, {connections} conns): {rate:9.0f} msg/s accepted   p99 {p99:.1f} ms per request"
          f"   target >= 30000 msg/s: {'met' if rate >= 30000 else 'MISSED'}")
    return rate


def _print_pair(label: str, ours: list[WrkResult], baseline: list[WrkResult]) -> float:
    """Print our medians beside the baseline's and the ratio; return the ratio."""
    rate = statistics.median(run.requests_per_s for run in ours)
    bare = statistics.median(run.requests_per_s for run in baseline)
    ratio = rate / bare
    print(f"{label + ':':28} {rate:7.0f} req/s (p50 {statistics.median(r.p50_ms for r in ours):.1f} ms, "
          f"p99 {statistics.median(r.p99_ms for r in ours):.1f} ms)   bare {bare:7.0f} req/s "
          f"(p50 {statistics.median(r.p50_ms for r in baseline):.1f} ms, p99 {statistics.median(r.p99_ms for r in baseline):.1f} ms)"
          f"   ratio {ratio:.2f}x (target >= 0.6x: {'met' if ratio >= 0.6 else 'MISSED'})")
    return ratio


def _checked(result: WrkResult) -> WrkResult:
    """A run in which every request succeeded, else an error: failures would make the rate meaningless."""
    if result.failed:
        raise RuntimeError(f"{result.failed} requests failed during a wrk run")
    return result
