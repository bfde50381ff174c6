"""Restart the parts of the local stack when they die, with exponential backoff and a crash-loop limit."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


class Part(Protocol):
    """A process of the stack that can be started again (a ManagedProcess or a LocalServer)."""

    name: str

    @property
    def alive(self) -> bool: ...

    @property
    def pid(self) -> int | None: ...

    @property
    def returncode(self) -> int | None: ...

    @property
    def log_path(self) -> Path: ...

    def start(self) -> None: ...

    def stop(self) -> object: ...


@dataclass(frozen=True)
class RestartPolicy:
    """How long to wait before each restart, and when a part counts as crash-looping."""

    first_delay: float = 1.0
    max_delay: float = 30.0
    steady_after: float = 60.0
    crash_loop: int = 5

    def delay(self, quick_exits: int) -> float:
        """The wait before restarting a part that died `quick_exits` times in a row soon after starting."""
        return min(self.first_delay * 2 ** (quick_exits - 1), self.max_delay)


class CrashLoop(Exception):
    """A part died too many times in a row, each soon after it was started."""


def describe_exit(returncode: int | None) -> str:
    """Say how a process ended: 'exit status 2', 'killed by SIGKILL'."""
    if returncode is None:
        return "no exit status"
    if returncode >= 0:
        return f"exit status {returncode}"
    try:
        return f"killed by {signal.Signals(-returncode).name}"
    except ValueError:
        return f"killed by signal {-returncode}"


class Supervisor:
    """Notices parts that died and starts them again once their backoff delay has passed."""

    def __init__(
        self,
        parts: Sequence[Part],
        policy: RestartPolicy = RestartPolicy(),
        say: Callable[[str], None] = print,
        on_start: Callable[[Part], None] = lambda part: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Watch `parts`, all running now; `say` prints the one line per restart."""
        self._parts = list(parts)
        self._policy = policy
        self._say = say
        self._on_start = on_start
        self._clock = clock
        self._started = {part.name: clock() for part in parts}
        self._quick_exits = {part.name: 0 for part in parts}
        self._due: dict[str, float] = {}

    def check(self) -> None:
        """Restart the parts whose delay is over and schedule those that died; raise CrashLoop to give up."""
        for part in self._parts:
            if part.name in self._due:
                if self._clock() >= self._due[part.name]:
                    self._restart(part)
            elif not part.alive:
                self._died(part, f"exited ({describe_exit(part.returncode)})")

    def _died(self, part: Part, what: str) -> None:
        """Count the death, then schedule a restart or raise CrashLoop."""
        # Whatever is left of its process group (gunicorn workers of a killed master) would hold its port.
        part.stop()
        now = self._clock()
        steady = now - self._started[part.name] >= self._policy.steady_after
        quick = 1 if steady else self._quick_exits[part.name] + 1
        self._quick_exits[part.name] = quick
        if quick >= self._policy.crash_loop:
            raise CrashLoop(
                f"{part.name} keeps crashing: it died {quick} times in a row, each within "
                f"{self._policy.steady_after:g}s of starting (last: {what}); stopping everything; log: {part.log_path}"
            )
        delay = self._policy.delay(quick)
        self._say(f"{part.name} {what}; restarting it in {delay:g}s")
        self._due[part.name] = now + delay

    def _restart(self, part: Part) -> None:
        """Start a part again; a start that fails counts as one more quick death."""
        del self._due[part.name]
        self._started[part.name] = self._clock()
        try:
            part.start()
        except (RuntimeError, TimeoutError) as error:
            self._died(part, f"did not start ({str(error).splitlines()[0]})")
            return
        self._on_start(part)
