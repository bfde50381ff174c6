"""The end-to-end figure: single sends with the consumer storing them, the CPU each part spends per message."""

import statistics
from dataclasses import dataclass

from infra.process import wait_until
from tests.support.api import Api

from .cpu import CpuSince, bounds
from .http_load import SINGLE, Run, cpu_of, measured
from .progress import CommittedProgress
from .verdict import verdict
from .wrk import post_script, run_wrk


@dataclass(frozen=True)
class Pipeline:
    """One wrk run on the producer, until the consumer committed every message it accepted."""

    accepted: int
    stored_per_s: float
    cpu_us: dict[str, float]  # per message accepted, by part
    bound: str


def run(api: Api, bare_url: str, bare_pid: int, parts: dict[str, int], progress: CommittedProgress, rounds: int,
        seconds: float, connections: list[int]) -> dict[int, float]:
    """Interleave pipeline runs and bare-endpoint runs at each connection count; print and return the CPU ratios.

    `parts`: the process groups whose CPU is counted ({name: pid}), among them "producer" and "consumer".
    """
    ours_script, bare_script = post_script(SINGLE, api.tokens["sender"]), post_script(SINGLE, None)
    ratios = {}
    for count in connections:
        pipelines: list[Pipeline] = []
        baseline: list[Run] = []
        for _ in range(rounds):
            pipelines.append(_pipeline(api.base_url + "/send-message", ours_script, count, seconds, parts, progress))
            baseline.append(measured(bare_url + "/send-message", bare_script, count, seconds, {"server": bare_pid}))
        ratios[count] = _print(count, pipelines, baseline)
    return ratios


def _pipeline(url: str, script: str, connections: int, seconds: float, parts: dict[str, int],
              progress: CommittedProgress) -> Pipeline:
    """Send for `seconds`, then wait until the consumer committed all of it; the whole span's figures."""
    start = progress.end()
    wait_until(lambda: progress.committed() >= start, timeout=120, interval=0.1, what="earlier messages committed")
    meter = CpuSince(parts)
    result = run_wrk(url, script, connections, seconds)
    if result.failed:
        raise RuntimeError(f"{result.failed} requests failed during a wrk run")
    end = progress.end()
    wait_until(lambda: progress.committed() >= end, timeout=300, interval=0.05, what="every accepted message committed")
    spent, machine, took = meter.read()
    accepted = end - start
    return Pipeline(accepted, accepted / took, {name: used / accepted * 1e6 for name, used in spent.items()},
                    bounds(spent, took, machine))


def _print(connections: int, pipelines: list[Pipeline], baseline: list[Run]) -> float:
    """Print the medians: stored msg/s, CPU per message by part against the bare endpoint's per request; the ratio."""
    stored = statistics.median(pipeline.stored_per_s for pipeline in pipelines)
    per_part = {name: statistics.median(pipeline.cpu_us[name] for pipeline in pipelines) for name in pipelines[0].cpu_us}
    bare = cpu_of(baseline, "server")
    ratio = (per_part["producer"] + per_part["consumer"]) / bare
    parts = ", ".join(f"{name} {used:.0f} us" for name, used in per_part.items())
    print(f"end to end, {connections} conns:  {stored:6.0f} msg/s stored   CPU per message: {parts}; bare endpoint "
          f"{bare:.0f} us per request; producer + consumer {ratio:.3f}x (target <= 2x: {verdict(ratio <= 2)})")
    print(f"{'':24} {pipelines[-1].bound}")
    return ratio
