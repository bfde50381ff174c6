"""The send figures: POST /send-message against a bare endpoint under the same gunicorn settings, and batches."""

import json
import os
import statistics
from dataclasses import dataclass
from pathlib import Path

from shared_adapters.kafka_connection import read_kafka_connection
from consumer_service.infrastructure.kafka_io import ensure_topics
from infra.process import ManagedProcess, free_ports, wait_until
from producer_service.config import DEFAULT_THREADS, DEFAULT_WORKERS
from tests.support.api import Api
from tests.support.services import BIN, start_producer

from .cpu import CpuSince, bounds
from .verdict import verdict
from .wrk import WrkResult, post_script, run_wrk

GUNICORN = [str(BIN / "gunicorn"), "-c", "python:producer_service.entrypoints.gunicorn_config"]
SINGLE = json.dumps({"to": "receiver", "message": "a benchmark message of ordinary length"})


def producer_workers() -> int:
    """The gunicorn workers of the benchmarked producer and of the bare endpoint: PRODUCER_WORKERS, else the default."""
    return int(os.environ.get("PRODUCER_WORKERS", DEFAULT_WORKERS))


def producer_threads() -> int:
    """The request threads of each of those workers: PRODUCER_THREADS, else the default (both servers read it)."""
    return int(os.environ.get("PRODUCER_THREADS", DEFAULT_THREADS))


def start_bare(env: dict, logs: Path) -> tuple[ManagedProcess, str]:
    """The bare endpoint under the producer's own gunicorn settings; returns the process and its URL."""
    port = free_ports(1)[0]
    argv = [*GUNICORN, "--bind", f"127.0.0.1:{port}", "tests.bench.bare_app:create_app()"]
    process = ManagedProcess("bare", argv, logs / f"bare-{port}.log",
                             env={**env, "PRODUCER_WORKERS": str(producer_workers())})
    process.start()
    base = f"http://127.0.0.1:{port}"
    wait_until(lambda: Api(base).get("/health").status == 200, timeout=30, what="bare /health", process=process)
    return process, base


@dataclass(frozen=True)
class Run:
    """One wrk run: its figures, the CPU seconds each measured process group spent and the machine's busy CPU."""

    result: WrkResult
    seconds: float
    spent: dict[str, float]
    machine: float

    @property
    def requests_per_s(self) -> float:
        return self.result.requests_per_s

    @property
    def cpu_us(self) -> dict[str, float]:
        """CPU microseconds per request of each process group."""
        return {name: used / (self.requests_per_s * self.seconds) * 1e6 for name, used in self.spent.items()}

    def bounds(self) -> str:
        """What bounded the run."""
        return bounds(self.spent, self.seconds, self.machine)


def measured(url: str, script: str, connections: int, seconds: float, groups: dict[str, int]) -> Run:
    """A wrk run, with the CPU seconds of each process group in `groups` ({name: pid}) and of the machine."""
    meter = CpuSince(groups)
    result = run_wrk(url, script, connections, seconds)
    if result.failed:
        raise RuntimeError(f"{result.failed} requests failed during a wrk run")
    spent, machine, _elapsed = meter.read()
    return Run(result, seconds, spent, machine)


def run(env: dict, logs: Path, tokens: dict, rounds: int, seconds: float, connections: list[int], kafka_pid: int) -> dict:
    """Interleave wrk runs on ours and the bare endpoint; print medians, ratios and CPU per request; return the ratios."""
    ensure_topics(read_kafka_connection(env), [env["MESSAGES_TOPIC"]], 3, timeout=30)  # no consumer runs here
    producer, api = start_producer(env, logs, tokens, producer_workers())
    bare, bare_url = start_bare(env, logs)
    figures = {}
    try:
        wait_until(lambda: api.get("/ready").status == 200, timeout=60, what="producer /ready", process=producer)
        ours_script, bare_script = post_script(SINGLE, tokens["sender"]), post_script(SINGLE, None)
        for url, script in ((api.base_url, ours_script), (bare_url, bare_script)):
            run_wrk(url + "/send-message", script, connections[0], 2)  # warm-up: connections, caches, JIT-less paths
        ours_groups, bare_groups = {"server": producer.pid, "broker": kafka_pid}, {"server": bare.pid}
        for count in connections:
            ours, baseline = [], []
            for _ in range(rounds):
                ours.append(measured(api.base_url + "/send-message", ours_script, count, seconds, ours_groups))
                baseline.append(measured(bare_url + "/send-message", bare_script, count, seconds, bare_groups))
            figures[f"single_{count}"] = _print_pair(f"single send, {count} conns", ours, baseline)
        figures["batch"] = _run_batches(api, tokens, rounds, seconds, ours_groups)
    finally:
        producer.stop()
        bare.stop()
    return figures


def _run_batches(api: Api, tokens: dict, rounds: int, seconds: float, groups: dict[str, int], size: int = 100,
                 connections: int = 8) -> float:
    """POST /send-messages with `size` messages per request; print the median messages/s accepted."""
    body = json.dumps([{"to": f"receiver{n % 7}", "message": f"batched benchmark message {n}"} for n in range(size)])
    script = post_script(body, tokens["batcher"])
    runs = [measured(api.base_url + "/send-messages", script, connections, seconds, groups) for _ in range(rounds)]
    rate = statistics.median(run.requests_per_s for run in runs) * size
    p99 = statistics.median(run.result.p99_ms for run in runs)
    print(f"batch send ({size}/request, {connections} conns): {rate:7.0f} msg/s accepted   p99 {p99:.1f} ms per request"
          f"   target >= 30000 msg/s: {verdict(rate >= 30000)}   {_cpu(runs, per=size)} per message")
    print(f"{'':24} {runs[-1].bounds()}")
    return rate


def _print_pair(label: str, ours: list[Run], baseline: list[Run]) -> float:
    """Print our medians beside the baseline's, the ratio and the CPU each spent; return the ratio."""
    rate = statistics.median(run.requests_per_s for run in ours)
    bare = statistics.median(run.requests_per_s for run in baseline)
    ratio = rate / bare
    print(f"{label + ':':24} {rate:6.0f} req/s (p50 {_median(ours, 'p50_ms'):.1f} ms, p99 {_median(ours, 'p99_ms'):.1f} ms)"
          f"   bare {bare:6.0f} req/s (p50 {_median(baseline, 'p50_ms'):.1f} ms, p99 {_median(baseline, 'p99_ms'):.1f} ms)"
          f"   ratio {ratio:.3f}x (target >= 0.6x: {verdict(ratio >= 0.6)})")
    cpu_ratio = cpu_of(ours, "server") / cpu_of(baseline, "server")
    print(f"{'':24} CPU per request: ours {_cpu(ours)}; bare {_cpu(baseline)}; server ours/bare {cpu_ratio:.3f}x "
          f"(target <= 1.5x: {verdict(cpu_ratio <= 1.5)})")
    print(f"{'':24} ours {ours[-1].bounds()}")
    return ratio


def _median(runs: list[Run], figure: str) -> float:
    """The median of one latency figure over runs."""
    return statistics.median(getattr(run.result, figure) for run in runs)


def cpu_of(runs: list[Run], name: str) -> float:
    """The median CPU microseconds per request that process group `name` spent over runs."""
    return statistics.median(run.cpu_us[name] for run in runs)


def _cpu(runs: list[Run], per: int = 1) -> str:
    """The median CPU microseconds each process group spent, per request or per `per`th of one."""
    return ", ".join(f"{name} {cpu_of(runs, name) / per:.0f} us" for name in runs[0].cpu_us)
