"""The stack `make soak` loads: `python -m infra.local_stack`, as `make run` starts it, on free ports with fresh data."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from infra.process import free_ports, port_open
from tests.support.local_stack import LocalStackRun

from .settings import SoakSettings

READ_BACK_PAGE = 5000  # messages per page of the read-back


def new_stack(workdir: Path, settings: SoakSettings, clients: list[str]) -> LocalStackRun:
    """A `make run` in `workdir`, with limits that let the soak's load through unless the environment sets them.

    Every other variable (RUN_KAFKA_BROKERS, RUN_KAFKA_SECURITY, PRODUCER_WORKERS ...) passes through as it is.
    """
    env = {"RUN_CONSUMER_METRICS_PORT": str(_free_port_run(len(clients)))}
    defaults = {
        # Each client sends half the rate; twice that per minute leaves the limiter room.
        "SEND_RATE_LIMIT": str(max(600, int(settings.rate * 60 * 2))),
        # Every stream of a client may land on the same worker.
        "STREAM_LIMIT_PER_CLIENT": str(settings.streams),
        # The read-back at the end pages through everything sent: few large pages, each of them many lookups by _id
        # in the message streams, given time for a store still busy after an hour of load.
        "PAGE_SIZE_MAX": str(READ_BACK_PAGE),
        "MONGODB_TIMEOUT_MS": "30000",
    }
    run = LocalStackRun(workdir, **env)
    for name, value in defaults.items():
        run.env.setdefault(name, value)
    return run


def start(run: LocalStackRun) -> None:
    """Start it in a session of its own: a Ctrl-C reaches the soak alone, which then stops it once, with SIGINT."""
    with open(run.output_path, "wb") as output:
        run.process = subprocess.Popen([sys.executable, "-m", "infra.local_stack"], cwd=run.workdir, env=run.env,
                                       stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                                       start_new_session=True)


def stop(run: LocalStackRun, timeout: float = 120) -> int | None:
    """SIGINT it as Ctrl-C would, wait, and leave nothing of it running; return its exit status."""
    if run.process is None:
        return None
    if run.process.poll() is None:
        run.process.send_signal(signal.SIGINT)
        try:
            run.process.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    run.close()
    return run.process.returncode


def _free_port_run(count: int) -> int:
    """The first of `count` consecutive free ports (the consumers' metrics ports follow one another)."""
    for _ in range(50):
        first = free_ports(1)[0]
        if first + count <= 65535 and not any(port_open(first + n) for n in range(count)):
            return first
    raise RuntimeError(f"no {count} consecutive free ports found")
