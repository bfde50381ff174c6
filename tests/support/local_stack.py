"""`python -m infra.local_stack` (what `make run` runs) as a test's subprocess, on free ports with its own data."""

import contextlib
import json
import os
import signal
import stat
import subprocess
import sys
import uuid
from pathlib import Path

from infra.process import free_ports, wait_until
from tests.support.api import Api

REPO = Path(__file__).resolve().parents[2]
MARK = "LOCAL_STACK_TEST_RUN"


class LocalStackRun:
    """One `make run` in a directory of its own; every process it starts carries a mark in its environment."""

    def __init__(self, workdir: Path, **env):
        """Choose free ports and a private data dir; nothing runs until start()."""
        kafka, controller, mongo, producer, operator = free_ports(5)
        self.workdir = workdir
        self.mark = uuid.uuid4().hex
        self.mongo_uri = f"mongodb://127.0.0.1:{mongo}/"
        self.api = Api(f"http://127.0.0.1:{producer}")
        self.operator = Api(f"http://127.0.0.1:{operator}")
        inherited = {name: value for name, value in os.environ.items()
                     if name not in ("KAFKA_BOOTSTRAP_SERVERS", "MONGODB_URI")}
        self.env = {
            **inherited,
            # The worktree's packages, not whatever the virtualenv's editable install points at.
            "PYTHONPATH": os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]),
            "RUN_KAFKA_PORT": str(kafka), "RUN_KAFKA_CONTROLLER_PORT": str(controller), "RUN_MONGO_PORT": str(mongo),
            "RUN_DATA_DIR": str(workdir / "data"), "PRODUCER_BIND": f"127.0.0.1:{producer}",
            "OPERATOR_BIND": f"127.0.0.1:{operator}",
            MARK: self.mark, **env,
        }
        self.output_path = workdir / "output.txt"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        """Start it with its output going to a file."""
        with open(self.output_path, "wb") as output:
            self.process = subprocess.Popen([sys.executable, "-m", "infra.local_stack"], cwd=self.workdir,
                                            env=self.env, stdin=subprocess.DEVNULL, stdout=output,
                                            stderr=subprocess.STDOUT)

    def output(self) -> str:
        """Everything it printed so far."""
        return self.output_path.read_text(errors="replace")

    def lines(self) -> list[str]:
        """Its own lines so far (not those echoed from a service's log, which start with '[name]')."""
        return [line for line in self.output().splitlines() if line and not line.startswith("[")]

    def wait_for(self, condition, timeout: float, what: str) -> None:
        """Wait until `condition()` holds; fail early, with the output, if the stack exits meanwhile."""
        wait_until(lambda: condition() or self.process.poll() is not None, timeout, what=what)
        assert condition(), f"make run exited with {self.process.returncode} before {what}:\n{self.output()[-4000:]}"

    def wait_ready(self, timeout: float = 120) -> None:
        """Wait until it printed its usage (after the producer's /ready) and wrote its pids; sign requests with its tokens."""
        self.wait_for(lambda: any(line.startswith("ready: ") for line in self.lines()) and self.pids_path.exists(),
                      timeout, "make run is ready")
        self.api.tokens = json.loads((self.workdir / "data" / "tokens.json").read_text())

    @property
    def pids_path(self) -> Path:
        """The state file naming each running part's pid."""
        return self.workdir / ".run" / "pids.json"

    def pids(self) -> dict[str, int]:
        """The pid of each part, from the state file it rewrites whenever a part starts."""
        return json.loads(self.pids_path.read_text())

    def open_to_others(self) -> list[str]:
        """Every file and directory under its data dir and .run that its group or others may use, with its mode."""
        found = []
        for root in (self.workdir / "data", self.workdir / ".run"):
            for path in (root, *root.rglob("*")):
                with contextlib.suppress(FileNotFoundError):  # Kafka and FerretDB add and remove files meanwhile
                    mode = path.lstat().st_mode
                    if not stat.S_ISLNK(mode) and mode & 0o077:
                        found.append(f"{stat.S_IMODE(mode):o} {path}")
        return found

    def marked_processes(self) -> list[int]:
        """Pids of every running process it started, children of children included."""
        found = []
        needle = f"{MARK}={self.mark}".encode()
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and entry.name != str(os.getpid()):
                try:
                    if needle in (entry / "environ").read_bytes().split(b"\0") and _alive(entry):
                        found.append(int(entry.name))
                except OSError:
                    continue
        return found

    def stop(self, timeout: float = 90) -> int:
        """SIGTERM it as Ctrl-C would and return its exit status."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def close(self) -> None:
        """Make sure nothing of it is left running, whatever happened in the test."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(90)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for pid in self.marked_processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _alive(proc_entry: Path) -> bool:
    """Whether a /proc entry is a process that has not exited (zombies have)."""
    return (proc_entry / "stat").read_text().rsplit(") ", 1)[1][0] != "Z"


def running(run: LocalStackRun):
    """Start a `make run` and wait until it is ready; leave nothing of it behind afterwards (a fixture's body)."""
    run.start()
    try:
        run.wait_ready()
        yield run
    finally:
        run.close()


def environ(pid: int) -> dict[str, str]:
    """A running process's environment (how a service of the stack reaches Kafka and the store, whatever make run chose)."""
    entries = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(entry.decode(errors="replace").partition("=")[::2] for entry in entries if entry)
