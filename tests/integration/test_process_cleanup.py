"""A process the project starts does not outlive its starter, even one killed with SIGKILL."""

import os
import signal
import subprocess
import sys
import textwrap

from infra.process import wait_until

SLEEPER = [sys.executable, "-c", "import time; time.sleep(300)"]
STARTER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from infra.process import ManagedProcess
    child = ManagedProcess("sleeper", sys.argv[2:], Path(sys.argv[1]))
    child.start()
    print(child.pid, flush=True)
    time.sleep(300)
""")


def argv_of(pid: int) -> list[str]:
    """The command line a process runs now."""
    with open(f"/proc/{pid}/cmdline") as cmdline:
        return cmdline.read().split("\0")[:-1]


def alive(pid: int) -> bool:
    """Whether a process with this pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def signal_state(pid: int) -> str:
    """The state, parent and signal masks of a process, to explain why it is still alive."""
    try:
        with open(f"/proc/{pid}/status") as status:
            return " ".join(line.strip() for line in status if line.startswith(("State", "PPid", "Sig", "Shd")))
    except FileNotFoundError:
        return "gone"


def test_a_child_gets_sigterm_when_its_starter_is_killed(tmp_path):
    starter = subprocess.Popen([sys.executable, "-c", STARTER, str(tmp_path / "sleeper.log"), *SLEEPER], stdout=subprocess.PIPE,
                               text=True, cwd=os.getcwd())
    child_pid = None
    try:
        child_pid = int(starter.stdout.readline())
        # Only the final command proves setpriv has armed the death signal: right after the fork the child
        # still shows the starter's command line, then setpriv's, and both mention the sleep too.
        wait_until(lambda: argv_of(child_pid) == SLEEPER, timeout=10, what="the child to run its own command")
        starter.send_signal(signal.SIGKILL)
        starter.wait(10)
        try:
            wait_until(lambda: not alive(child_pid), timeout=10, what="the orphaned child to stop")
        except TimeoutError as timeout:
            raise AssertionError(f"{timeout}; child {signal_state(child_pid)}") from None
    finally:
        starter.kill()
        starter.wait(10)
        if child_pid is not None and alive(child_pid):
            os.kill(child_pid, signal.SIGKILL)


STUCK_ON_STOP = textwrap.dedent("""
    import os, signal, threading
    from consumer_service.entrypoints import cli
    cli.STOP_REPORT_S = 0.5
    stop = cli._stop_on_signals()

    def finish_the_batch_forever():
        threading.Event().wait()

    stuck = threading.Thread(target=finish_the_batch_forever, daemon=True)
    stuck.start()
    os.kill(os.getpid(), signal.SIGTERM)
    stop.wait()
    stuck.join(3)
""")


def test_a_consumer_service_still_stopping_after_a_while_reports_where_each_thread_is():
    finished = subprocess.run([sys.executable, "-c", STUCK_ON_STOP], capture_output=True, text=True, timeout=60)
    assert "finish_the_batch_forever" in finished.stderr, finished.stderr[-2000:]
    assert "Thread" in finished.stderr and "most recent call first" in finished.stderr
