"""The restart loop of `make run`: backoff, its reset after a steady run, the crash-loop limit."""

from pathlib import Path

import pytest

from infra.supervisor import CrashLoop, RestartPolicy, Supervisor, describe_exit


class FakePart:
    """A part whose death and failed starts the test decides."""

    def __init__(self, name="consumer-clientB"):
        self.name = name
        self.alive = True
        self.returncode = None
        self.pid = 100
        self.log_path = Path(f"/logs/{name}.log")
        self.starts = 0
        self.stops = 0
        self.start_error = None

    def die(self, returncode=-9):
        self.alive, self.returncode = False, returncode

    def start(self):
        self.starts += 1
        if self.start_error:
            raise self.start_error
        self.alive, self.returncode, self.pid = True, None, self.pid + 1

    def stop(self):
        self.stops += 1


class Clock:
    """Time that moves only when the test says so."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


def supervisor_of(parts, clock, lines, started=None):
    """A supervisor with the default policy, a fake clock and its lines collected."""
    started = [] if started is None else started
    return Supervisor(parts, RestartPolicy(), say=lines.append, clock=clock, on_start=started.append)


def crash_and_wait(part, supervisor, clock, seconds_alive=0.0):
    """Let a part run `seconds_alive`, kill it, and let the supervisor notice and wait out the backoff."""
    clock.now += seconds_alive
    part.die()
    supervisor.check()
    clock.now += 30
    supervisor.check()


def test_a_dead_part_is_restarted_after_one_second_with_one_line_naming_it_its_status_and_the_delay(clock):
    part, lines, started = FakePart(), [], []
    supervisor = supervisor_of([part], clock, lines, started)
    part.die(-9)
    supervisor.check()
    assert lines == ["consumer-clientB exited (killed by SIGKILL); restarting it in 1s"]
    assert part.stops == 1 and part.starts == 0
    clock.now += 0.9
    supervisor.check()
    assert part.starts == 0
    clock.now += 0.1
    supervisor.check()
    assert part.starts == 1 and part.alive and started == [part] and len(lines) == 1


def test_quick_deaths_double_the_delay_and_the_fifth_stops_everything_naming_the_part_and_its_log(clock):
    part, lines = FakePart(), []
    supervisor = supervisor_of([part], clock, lines)
    for _ in range(4):
        crash_and_wait(part, supervisor, clock, seconds_alive=59)
    assert [line.rsplit(" ", 1)[1] for line in lines] == ["1s", "2s", "4s", "8s"]
    clock.now += 59
    part.die(2)
    with pytest.raises(CrashLoop) as crash:
        supervisor.check()
    message = str(crash.value)
    assert "consumer-clientB keeps crashing" in message and "5 times in a row" in message
    assert "exit status 2" in message and "/logs/consumer-clientB.log" in message and "\n" not in message


def test_a_part_that_ran_steadily_starts_again_from_the_first_delay(clock):
    part, lines = FakePart(), []
    supervisor = supervisor_of([part], clock, lines)
    for _ in range(4):
        crash_and_wait(part, supervisor, clock)
    crash_and_wait(part, supervisor, clock, seconds_alive=60)
    crash_and_wait(part, supervisor, clock)
    assert [line.rsplit(" ", 1)[1] for line in lines] == ["1s", "2s", "4s", "8s", "1s", "2s"]


def test_the_delay_never_exceeds_the_cap():
    policy = RestartPolicy(crash_loop=100)
    assert [policy.delay(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]


def test_a_restart_that_fails_to_start_counts_as_a_quick_death(clock):
    part, lines = FakePart("FerretDB"), []
    supervisor = supervisor_of([part], clock, lines)
    crash_and_wait(part, supervisor, clock)
    part.start_error = RuntimeError("port 27017 is already in use\ndetails")
    crash_and_wait(part, supervisor, clock)
    assert part.starts == 2 and not part.alive
    assert lines[-1] == "FerretDB did not start (port 27017 is already in use); restarting it in 4s"


def test_only_the_dead_part_is_touched(clock):
    dead, healthy, lines = FakePart("producer"), FakePart("Kafka"), []
    supervisor = supervisor_of([dead, healthy], clock, lines)
    crash_and_wait(dead, supervisor, clock)
    assert (dead.starts, healthy.starts, healthy.stops) == (1, 0, 0)
    assert lines == ["producer exited (killed by SIGKILL); restarting it in 1s"]


@pytest.mark.parametrize("returncode, said", [(2, "exit status 2"), (0, "exit status 0"), (-15, "killed by SIGTERM"),
                                              (-200, "killed by signal 200"), (None, "no exit status")])
def test_exit_statuses_are_said_in_words(returncode, said):
    assert describe_exit(returncode) == said
