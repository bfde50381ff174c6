"""The slow-client figures of `make bench`: /health latency for one client, alone and beside slowloris connections.

BENCH_SLOW_CLIENTS (default 100) connections each send one more header byte every second and never
finish; an answered one is replaced at once, so that many stay open. The other client probes
GET /health on a new connection every 20 ms for BENCH_SLOW_SECONDS (default 15, longer than the
producer's 10 s REQUEST_READ_TIMEOUT_S, so the slow connections are cut off and replaced meanwhile).
"""

import os
import time

from infra.process import wait_until
from tests.support.raw_http import Slowloris, exchange

from .stored_latency import quantile

HEALTH = b"GET /health HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"


def run(port: int) -> None:
    """Probe /health alone, then beside the slow clients, and print both p99s and their ratio."""
    count = int(os.environ.get("BENCH_SLOW_CLIENTS", "100"))
    seconds = float(os.environ.get("BENCH_SLOW_SECONDS", "15"))
    alone = _p99(_probe(port, seconds=3))
    with Slowloris(port, count, interval=1.0, reconnect=True) as slow:
        wait_until(lambda: slow.rounds >= 2, timeout=10, interval=0.1, what="the slow clients' first bytes")
        beside = _p99(_probe(port, seconds))
    cut_off = sum(1 for answer, _ in slow.answers if answer is not None and answer.status == 408)
    print(f"slow clients:         /health p99 {alone:.1f} ms alone, {beside:.1f} ms beside {count} slowloris "
          f"connections (x{beside / alone:.1f}; under 100 ms: {'yes' if beside < 100 else 'NO'}); "
          f"{len(slow.answers)} slow connections ended meanwhile, {cut_off} with a 408")


def _probe(port: int, seconds: float, every: float = 0.02) -> list[float]:
    """Latencies of GET /health on a new connection every `every` s for `seconds` s."""
    latencies = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        began = time.perf_counter()
        answer = exchange(port, HEALTH, timeout=10)
        latencies.append(time.perf_counter() - began)
        if answer is None or answer.status != 200:
            raise RuntimeError(f"/health answered {answer and answer.status} during the slow-client run")
        time.sleep(max(0.0, every - latencies[-1]))
    return latencies


def _p99(latencies: list[float]) -> float:
    """The 99th percentile, in milliseconds."""
    return quantile(sorted(latencies), 0.99) * 1000
