"""`make soak`: the `make run` stack under a steady load with live streams for SOAK_MINUTES, judged minute by minute.

Exit 0 when it passed, 1 when a rule failed (each failure on a line of its own), 2 on a bad SOAK_* setting,
130 on Ctrl-C. The stack runs in a fresh directory, removed when the soak passes and kept otherwise.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

from shared_domain.config import ConfigError
from tests.support import contract

from .run import soak
from .settings import read_soak_settings
from .stack import new_stack, start, stop


def main() -> int:
    """Start the stack, soak it, stop it, and print the verdict."""
    try:
        settings = read_soak_settings(os.environ)
    except ConfigError as error:
        print(f"make soak cannot start: {error}", file=sys.stderr)
        return 2
    contract.ENABLED = False  # the soak watches the services over time; the tests check their answers
    clients = os.environ.get("RUN_CLIENTS", "clientA clientB").split()
    workdir = Path(tempfile.mkdtemp(prefix="soak-"))
    run = new_stack(workdir, settings, clients)
    print(f"make soak: {settings.minutes} min of {settings.rate:g} sends a second between {', '.join(clients)} with "
          f"{settings.streams} live streams; starting make run in {workdir} ...", flush=True)
    interrupted = False
    try:
        start(run)
        run.wait_ready(timeout=600)
        failures = soak(run, settings, clients)
    except KeyboardInterrupt:
        interrupted, failures = True, ["interrupted (Ctrl-C)"]
    except (AssertionError, RuntimeError, TimeoutError) as error:
        failures = [f"the soak could not go on: {error}"]
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the stack's shutdown short
        print("stopping make run ...", flush=True)
        status = stop(run)
    if run.process is not None and status != 0:
        failures.append(f"make run exited with {status} when stopped (output: {run.output_path})")
    if failures:
        print(f"\nmake soak FAILED (stack output and logs kept in {workdir}):", file=sys.stderr)
        for failure in failures:
            print(f"  {failure}", file=sys.stderr)
        return 130 if interrupted else 1
    shutil.rmtree(workdir, ignore_errors=True)
    print(f"\nmake soak passed: {settings.minutes} min, no steady growth, no stall, every accepted message "
          "delivered and read back")
    return 0


if __name__ == "__main__":
    sys.exit(main())
