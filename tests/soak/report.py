"""The soak's minute lines, its trend table, and the failures each minute and the whole run show."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from .probes import GroupPosition, ProcessSample
from .settings import SoakSettings
from .trend import MIN_JUDGED, Series, growth, grows_steadily, lag_grows, late_percent_per_hour, quantile

# What a process may not grow steadily, and by how much its last quarter may exceed its first regardless.
METRICS = (("RSS MiB", "rss_mib", 2.0), ("fds", "fds", 3.0), ("threads", "threads", 3.0))


@dataclass(frozen=True)
class Minute:
    """One sample: the minute's sends, stores, events and latencies, and the state of groups and processes at its end."""

    number: int
    processes: dict[str, ProcessSample]
    groups: dict[str, GroupPosition]
    stored: int = 0  # messages stored during the minute
    statuses: Counter = field(default_factory=Counter)  # the minute's answers to sends
    events: int = 0  # chat-message events the streams received during the minute
    missing: int = 0  # accepted messages, older than LATE_S, not yet on every stream they belong on
    latencies: Sequence[float] = ()  # stored latencies (ms) of the messages that first arrived during the minute

    @property
    def accepted(self) -> int:
        """Sends answered 202 during the minute."""
        return self.statuses[202]


def minute_line(minute: Minute) -> str:
    """The load, the store, the streams and the lag of one minute, on one line."""
    refused = sum(count for status, count in minute.statuses.items() if status != 202)
    answers = ", ".join(f"{status}: {count}" for status, count in sorted(minute.statuses.items(), key=str)
                        if status != 202)
    lags = ", ".join(f"{group} {position.lag}" for group, position in minute.groups.items()) or "no commits yet"
    return (f"minute {minute.number:3}: sent {minute.accepted + refused} (202: {minute.accepted}, refused {refused}"
            f"{f' - {answers}' if answers else ''}), stored +{minute.stored}, events {minute.events} "
            f"(missing {minute.missing}), latency p50 {quantile(minute.latencies, 0.5):.0f} ms "
            f"p99 {quantile(minute.latencies, 0.99):.0f} ms; lag {lags}")


def processes_line(minute: Minute) -> str:
    """Each process's RSS, descriptors and threads at the end of a minute, on one line."""
    return f"minute {minute.number:3}: " + ", ".join(
        f"{name} {sample.rss_mib:.0f}M {sample.fds}fd {sample.threads}th" for name, sample in minute.processes.items())


def minute_failures(minute: Minute, before: Minute) -> list[str]:
    """A stall or a replaced process, seen by comparing a minute with the one before."""
    at = f"minute {minute.number}"
    failures = []
    if not minute.accepted:
        failures.append(f"{at}: no send was accepted ({dict(minute.statuses)})")
    elif not minute.stored:
        failures.append(f"{at}: a stall: {minute.accepted} sends accepted, nothing stored")
    for group, position in minute.groups.items():
        earlier = before.groups.get(group)
        if earlier is not None and position.committed == earlier.committed and position.lag > 0:
            failures.append(f"{at}: a stall: group {group} committed nothing while {position.lag} records waited")
    for name, sample in before.processes.items():
        now = minute.processes.get(name)
        if now is None or now.pid != sample.pid:
            failures.append(f"{at}: {name} (pid {sample.pid}) was {'replaced' if now else 'gone'}")
    return failures


def judged(minutes: Sequence[Minute], settings: SoakSettings) -> list[Minute]:
    """The samples the trend is judged on: from the end of the warm-up on."""
    return [minute for minute in minutes if minute.number >= settings.warmup]


def trend_failures(minutes: Sequence[Minute], settings: SoakSettings) -> list[str]:
    """Processes that grow steadily, and groups whose lag keeps rising."""
    samples, failures = judged(minutes, settings), []
    for name in _process_names(samples):
        for label, attribute, floor in METRICS:
            series = _process_series(samples, name, attribute)
            if grows_steadily(series, settings.growth_limit, floor):
                moved = growth(series)
                failures.append(f"{name} {label} grows steadily: {moved.first:.1f} -> {moved.last:.1f} "
                                f"({moved.percent_per_hour:+.1f}% an hour, {late_percent_per_hour(series):+.1f}% "
                                f"in the second half; limit {settings.growth_limit:g}%)")
    for group in _group_names(samples):
        series = [(minute.number, minute.groups[group].lag) for minute in samples if group in minute.groups]
        if lag_grows(series, settings.lag_limit):
            failures.append(f"group {group} falls behind: lag {series[0][1]:.0f} -> {series[-1][1]:.0f} records "
                            f"(limit {settings.lag_limit:.0f} while rising)")
    return failures


def trend_table(minutes: Sequence[Minute], settings: SoakSettings) -> list[str]:
    """First against last quarter of the judged minutes, and the fitted slope, for every process metric, lag and latency."""
    samples = judged(minutes, settings)
    if not samples:
        return ["no minute after the warm-up: no trend"]
    rows: list[tuple[str, str, Series, float | None]] = []
    for name in _process_names(samples):
        rows += [(name, label, _process_series(samples, name, attribute), floor) for label, attribute, floor in METRICS]
    for group in _group_names(samples):
        rows.append((group, "lag", [(m.number, m.groups[group].lag) for m in samples if group in m.groups], None))
    for label, q in (("latency p50 ms", 0.5), ("latency p99 ms", 0.99)):
        rows.append(("streams", label, [(m.number, quantile(m.latencies, q)) for m in samples if m.latencies], None))
    width = max(len(name) for name, *_ in rows)
    lines = [f"trend over minutes {samples[0].number}-{samples[-1].number} (after {settings.warmup} min of warm-up): "
             f"means of the first and last quarter, the fitted slope an hour, and for processes that slope and the "
             f"second half's against the first quarter (judged from {MIN_JUDGED} minutes on, limit "
             f"{settings.growth_limit:g}% an hour)",
             f"{'':{width}}  {'metric':14} {'first':>9} {'last':>9} {'slope/h':>9} {'%/h':>8} {'late %/h':>8}  verdict"]
    for name, label, series, floor in rows:
        moved = growth(series)
        if moved is None:
            continue
        shares = (f"{moved.percent_per_hour:+7.1f}% {late_percent_per_hour(series):+7.1f}%" if floor is not None
                  else "")
        lines.append(f"{name:{width}}  {label:14} {moved.first:9.1f} {moved.last:9.1f} {moved.per_hour:+9.1f} "
                     f"{shares:>17}  {_verdict(series, settings, floor)}".rstrip())
    return lines


def _verdict(series: Series, settings: SoakSettings, floor: float | None) -> str:
    """'grows', 'ok' or 'too short' for a process metric; lag and latency are judged elsewhere or not at all."""
    if floor is None:
        return ""
    if len(series) < MIN_JUDGED:
        return "too short to judge"
    return "GROWS" if grows_steadily(series, settings.growth_limit, floor) else "ok"


def _process_names(samples: Sequence[Minute]) -> list[str]:
    """Every process seen, in the order first seen."""
    return list(dict.fromkeys(name for minute in samples for name in minute.processes))


def _group_names(samples: Sequence[Minute]) -> list[str]:
    """Every consumer group seen, in the order first seen."""
    return list(dict.fromkeys(group for minute in samples for group in minute.groups))


def _process_series(samples: Sequence[Minute], name: str, attribute: str) -> Series:
    """One metric of one process over the samples that have it."""
    return [(minute.number, float(getattr(minute.processes[name], attribute)))
            for minute in samples if name in minute.processes]
