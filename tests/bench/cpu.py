"""CPU time and memory of a process group, read from /proc: what a server spent on the load it was given."""

import os
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def group_cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of every live process in `pid`'s process group."""
    return sum(int(fields[11]) + int(fields[12]) for _, fields in _group(pid)) / _TICKS  # utime, stime


def group_rss_bytes(pid: int) -> int:
    """Resident memory of every live process in `pid`'s process group."""
    return sum(int(fields[21]) * _PAGE for _, fields in _group(pid))  # rss, in pages


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
