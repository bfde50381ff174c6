"""Subprocess management, polling and port helpers shared by the servers."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import stat
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

log = logging.getLogger("infra")

PRIVATE_UMASK = 0o077  # what a private process creates is for its owner alone


def require_tool(name: str, why: str) -> str:
    """Return the path of a command on PATH, or raise saying what it is needed for."""
    found = shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} not found on PATH: {why}")
    return found


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """Return `count` distinct free TCP ports on 127.0.0.1."""
    sockets = []
    try:
        # Keep every socket bound until all are chosen so the OS cannot hand out one twice.
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    """Return True if a TCP connection to host:port succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def private_dir(path: Path) -> Path:
    """Create a directory only its owner may enter, or make an existing one so (an older run may have made it 0755).

    Parents it has to create are made private too.
    """
    for directory in reversed([path, *path.parents]):
        if not directory.is_dir():
            directory.mkdir(mode=0o700, exist_ok=True)
    path.chmod(0o700)
    return path


def make_private(root: Path) -> None:
    """Make `root` private and take group and other access from everything under it (symbolic links left alone)."""
    private_dir(root)
    for directory, subdirs, files in os.walk(root):
        for name in (*subdirs, *files):
            path = os.path.join(directory, name)
            with contextlib.suppress(FileNotFoundError):
                mode = os.lstat(path).st_mode
                if not stat.S_ISLNK(mode) and mode & 0o077:
                    os.chmod(path, stat.S_IMODE(mode) & 0o700)


def write_private(path: Path, text: str) -> None:
    """Write a text file only its owner may read, never through a symbolic link."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    os.fchmod(descriptor, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)


def tail(path: Path, lines: int = 40) -> str:
    """Return the last `lines` lines of a text file, or '' if it does not exist."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 64 * 1024))
            data = handle.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


class ManagedProcess:
    """A child process in its own session, with output appended to a log file.

    A private one runs with umask 077 and its log is readable by its owner alone.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        private: bool = False,
    ) -> None:
        """Describe the process; nothing runs until start()."""
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.private = private
        self._popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the process; its stdout and stderr are appended to the log file."""
        if self.alive:
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self._open_log() as out:
            out.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} start: {self.argv}\n".encode())
            out.flush()
            self._popen = subprocess.Popen(
                _dies_with_parent(self.argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
                umask=PRIVATE_UMASK if self.private else -1,
            )
        log.debug("started %s pid=%s", self.name, self._popen.pid)

    def _open_log(self):
        """Open the log file to append to; a private process's is made readable by its owner alone."""
        if not self.private:
            return open(self.log_path, "ab")
        descriptor = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        os.fchmod(descriptor, 0o600)
        return os.fdopen(descriptor, "ab")

    @property
    def pid(self) -> int | None:
        """Return the pid of the current or last started process."""
        return self._popen.pid if self._popen else None

    @property
    def alive(self) -> bool:
        """Return True while the process is running."""
        return self._popen is not None and self._popen.poll() is None

    @property
    def returncode(self) -> int | None:
        """Return the exit status once the process has ended, else None."""
        return self._popen.poll() if self._popen else None

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM the process group, wait up to `timeout` s, then SIGKILL it (at once if the leader is gone)."""
        if self._popen is None:
            return None
        if self._popen.poll() is not None:
            # Members that outlived their leader (workers of a killed gunicorn master) have no one to stop them.
            self._signal_group(signal.SIGKILL)
        else:
            self._signal_group(signal.SIGTERM)
            try:
                self._popen.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in %.0fs; killing it", self.name, timeout)
                self._signal_group(signal.SIGKILL)
                self._popen.wait()
        log.debug("%s exited with %s", self.name, self._popen.returncode)
        return self._popen.returncode

    def kill(self) -> None:
        """SIGKILL the process group at once (simulates a crash)."""
        if self._popen is None or self._popen.poll() is not None:
            return
        self._signal_group(signal.SIGKILL)
        self._popen.wait()

    def log_tail(self, lines: int = 40) -> str:
        """Return the last lines of the process log."""
        return tail(self.log_path, lines)

    def _signal_group(self, sig: signal.Signals) -> None:
        """Send `sig` to the process group led by our child."""
        assert self._popen is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._popen.pid, sig)


def _dies_with_parent(argv: list[str]) -> list[str]:
    """The command, set to get SIGTERM if the process that started it dies (even by SIGKILL).

    Uses util-linux's setpriv rather than a preexec_fn, which is unsafe once threads run.
    The signal follows the death of the starting thread, so this is done only from the main one.
    """
    setpriv = shutil.which("setpriv")
    if setpriv is None or threading.current_thread() is not threading.main_thread():
        return argv
    return [setpriv, "--pdeathsig", "TERM", "--", *argv]


def wait_until(
    predicate: Callable[[], bool],
    timeout: float,
    interval: float = 0.2,
    what: str = "condition",
    process: ManagedProcess | None = None,
) -> None:
    """Poll `predicate` until true; raise TimeoutError at the deadline (RuntimeError if `process` dies)."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            if predicate():
                return
            last_error = None
        except Exception as exc:  # a probe of a service still starting may raise anything
            last_error = exc
        if process is not None and not process.alive:
            raise RuntimeError(
                f"{process.name} exited with code {process.returncode} while waiting for {what}; "
                f"log {process.log_path}:\n{process.log_tail()}"
            )
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            message = f"timed out after {timeout:.0f}s waiting for {what}{detail}"
            if process is not None:
                message += f"; log {process.log_path}:\n{process.log_tail()}"
            raise TimeoutError(message)
        time.sleep(interval)


def run(
    argv: Sequence[str],
    what: str,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float | None = None,
    private: bool = False,
) -> str:
    """Run a short command to completion and return its stdout; raise with its output on failure or timeout.

    A private command runs with umask 077, so that what it creates is for its owner alone.
    """
    log.debug("running %s: %s", what, argv)
    try:
        result = subprocess.run(
            list(argv),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            timeout=timeout,
            umask=PRIVATE_UMASK if private else -1,
        )
    except subprocess.TimeoutExpired:
        raise TimeoutError(f"{what} did not finish within {timeout:g}s") from None
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip().splitlines()[-40:]
        raise RuntimeError(f"{what} failed with exit code {result.returncode}:\n" + "\n".join(output))
    return result.stdout


class LocalServer:
    """A server process on loopback that the project starts, waits for, stops, kills and restarts.

    Its data dir and whatever the process writes there are for their owner alone.
    """

    name = "server"
    stop_timeout = 15.0

    def __init__(self, data_dir: Path) -> None:
        """Remember where the server keeps its data; nothing runs until start()."""
        self.data_dir = Path(data_dir).absolute()
        self._process: ManagedProcess | None = None
        self._address, self._began = "", 0.0

    @property
    def alive(self) -> bool:
        """Return True while the server process is running."""
        return self._process is not None and self._process.alive

    @property
    def pid(self) -> int | None:
        """Return the pid of the current or last started server process."""
        return self._process.pid if self._process else None

    @property
    def returncode(self) -> int | None:
        """Return the exit status of the server process once it has ended, else None."""
        return self._process.returncode if self._process else None

    @property
    def log_path(self) -> Path:
        """Return the file that receives the server's output."""
        return self.data_dir / f"{self.name.lower()}.log"

    def stop(self, timeout: float | None = None) -> None:
        """Shut the server down cleanly (SIGTERM), killing it after `timeout` seconds."""
        if self._process is not None:
            self._process.stop(self.stop_timeout if timeout is None else timeout)

    def kill(self) -> None:
        """SIGKILL the server, as in a crash."""
        if self._process is not None:
            self._process.kill()

    def restart(self) -> None:
        """Stop, then start again on the same ports and data."""
        self.stop()
        self.start()

    def start(self, timeout: float = 60.0) -> None:
        """Start the server and wait until it answers."""
        raise NotImplementedError

    def _ready(self) -> bool:
        """Tell whether the server answers."""
        raise NotImplementedError

    def _launch(self, argv: Sequence[str], address: str, timeout: float, interval: float) -> None:
        """Run `argv` and wait until the server answers at `address`; kill it if it does not in time."""
        self._spawn(argv, address)
        self.await_ready(timeout, interval)

    def _spawn(self, argv: Sequence[str], address: str) -> None:
        """Run `argv` as the server's process, serving at `address`, without waiting for it to answer."""
        self._process = ManagedProcess(name=f"{self.name.lower()}:{address}", argv=argv, log_path=self.log_path,
                                       private=True)
        self._address, self._began = address, time.monotonic()
        self._process.start()

    def await_ready(self, timeout: float, interval: float = 0.2) -> None:
        """Wait until the spawned server answers; kill it if it does not in time."""
        assert self._process is not None
        try:
            wait_until(self._ready, timeout, interval=interval, what=f"{self.name} on {self._address}",
                       process=self._process)
        except BaseException:
            self._process.kill()
            raise
        log.info("%s ready on %s in %.1fs", self.name, self._address, time.monotonic() - self._began)
