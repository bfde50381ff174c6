"""Running wrk, a real HTTP load generator: installing it when missing and reading its report."""

import re
import subprocess
import tempfile
from dataclasses import dataclass

from infra.system_packages import ensure_program

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


@dataclass(frozen=True)
class WrkResult:
    """What one wrk run measured: requests per second and latency percentiles in milliseconds."""

    requests_per_s: float
    p50_ms: float
    p99_ms: float
    failed: int  # non-2xx/3xx answers and socket errors: a run with any is not a fair figure


def ensure_wrk() -> str:
    """The path of wrk, installing Debian's package when it is missing and this user can."""
    return ensure_program(("wrk",), "wrk", "make bench")


def post_script(body: str, token: str | None) -> str:
    """A wrk Lua script that POSTs `body` as JSON, with the bearer token when given."""
    lines = ['wrk.method = "POST"', f"wrk.body = [==[{body}]==]", 'wrk.headers["Content-Type"] = "application/json"']
    if token:
        lines.append(f'wrk.headers["Authorization"] = "Bearer {token}"')
    return "\n".join(lines) + "\n"


def run_wrk(url: str, script: str, connections: int, seconds: float, threads: int = 2) -> WrkResult:
    """Load `url` with `connections` keep-alive connections for `seconds` and return what wrk measured."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as file:
        file.write(script)
        file.flush()
        argv = [ensure_wrk(), "--latency", "-t", str(min(threads, connections)), "-c", str(connections),
                "-d", f"{seconds:g}s", "-s", file.name, url]
        report = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=seconds + 60).stdout
    return parse_report(report)


def parse_report(report: str) -> WrkResult:
    """Read requests/s, p50, p99 and failures from wrk's --latency report."""
    def latency(percent: str) -> float:
        value, unit = re.search(rf"^\s*{percent}%\s+([\d.]+)(us|ms|s)\s*$", report, re.M).groups()
        return float(value) * _UNITS[unit]

    failed = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses:\s*(\d+)", report))
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", report)
    if errors:
        failed += sum(int(n) for n in errors.groups())
    rate = float(re.search(r"Requests/sec:\s*([\d.]+)", report).group(1))
    return WrkResult(rate, latency("50"), latency("99"), failed)
