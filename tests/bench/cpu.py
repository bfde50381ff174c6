"""CPU time and memory of a process group, read from /proc: what a server spent on the load it was given."""

import os
import time
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")
CORES = os.cpu_count() or 1
# A part using this much of a core is bound by its own CPU: one Python interpreter runs on one core at a time.
_ONE_CORE = 0.9


def group_cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of every live process in `pid`'s process group."""
    return sum(int(fields[11]) + int(fields[12]) for _, fields in _group(pid)) / _TICKS  # utime, stime


def group_rss_bytes(pid: int) -> int:
    """Resident memory of every live process in `pid`'s process group."""
    return sum(int(fields[21]) * _PAGE for _, fields in _group(pid))  # rss, in pages


def machine_cpu_seconds() -> float:
    """CPU seconds every core of the machine spent busy since boot (/proc/stat: all but idle and iowait)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / _TICKS


def bounds(spent: dict[str, float], seconds: float, machine: float) -> str:
    """What bounded a run of `seconds`: the machine's CPU, one part's own, or neither (it waited on something).

    `spent`: CPU seconds of each part over the run; `machine`: the machine's busy CPU seconds over it.
    """
    cores = {name: used / seconds for name, used in spent.items()}
    busiest = max(cores, key=cores.get)
    used = ", ".join(f"{name} {share:.2f}" for name, share in sorted(cores.items(), key=lambda item: -item[1]))
    busy = machine / seconds
    if busy >= _ONE_CORE * CORES:
        verdict = f"the machine's CPU, {busiest} using the most"
    elif cores[busiest] >= _ONE_CORE:
        verdict = f"{busiest}'s CPU"
    else:
        verdict = "latency, not CPU: the parts wait on each other (the broker's acknowledgements, the store's writes)"
    return f"bounded by {verdict} (cores used: {used}; the machine {busy:.2f} of {CORES})"


class CpuSince:
    """The CPU seconds each process group ({name: pid}) and the whole machine spend from its making on."""

    def __init__(self, parts: dict[str, int]):
        self._parts = parts
        self._before = {name: group_cpu_seconds(pid) for name, pid in parts.items()}
        self._machine, self._began = machine_cpu_seconds(), time.perf_counter()

    def read(self) -> tuple[dict[str, float], float, float]:
        """CPU seconds by part, the machine's busy CPU seconds and the seconds elapsed, since it was made."""
        return ({name: group_cpu_seconds(pid) - self._before[name] for name, pid in self._parts.items()},
                machine_cpu_seconds() - self._machine, time.perf_counter() - self._began)

    def bounds(self) -> str:
        """What bounded the time since it was made (see bounds())."""
        spent, machine, seconds = self.read()
        return bounds(spent, seconds, machine)


def _group(pid: int) -> list[tuple[int, list[str]]]:
    """(pid, /proc stat fields after the command name) of each live process in `pid`'s process group."""
    group, members = os.getpgid(pid), []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # the process ended meanwhile
            continue
        fields = text[text.rindex(")") + 2:].split()  # after "pid (comm) "
        if int(fields[2]) == group:  # pgrp
            members.append((int(stat.parent.name), fields))
    return members
