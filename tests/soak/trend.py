"""The soak's verdicts on a series of minute samples: steady growth, growing lag, and the trend table's figures.

Growth is judged on the samples after the warm-up only, and only when there are at least MIN_JUDGED of
them: a process still filling its caches, pools and JIT in its first minutes grows for good reasons,
and two or three points fit any line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

MIN_JUDGED = 8
Series = Sequence[tuple[float, float]]  # (minute, value)


@dataclass(frozen=True)
class Growth:
    """How a metric moved over the judged samples: quarter means, and the fitted slope per hour."""

    first: float
    last: float
    per_hour: float
    samples: int

    @property
    def percent_per_hour(self) -> float:
        """The fitted slope as a share of the first quarter's mean, in percent per hour."""
        return 100.0 * self.per_hour / self.first if self.first else 0.0


def growth(series: Series) -> Growth | None:
    """The quarter means and least-squares slope of a series (None when it is empty)."""
    if not series:
        return None
    values = [value for _, value in series]
    quarter = max(1, len(values) // 4)
    return Growth(_mean(values[:quarter]), _mean(values[-quarter:]), slope(series) * 60.0, len(values))


def slope(series: Series) -> float:
    """The least-squares slope of value over minute (0 for fewer than two distinct minutes)."""
    minutes = [minute for minute, _ in series]
    centre_x, centre_y = _mean(minutes), _mean([value for _, value in series])
    spread = sum((minute - centre_x) ** 2 for minute in minutes)
    if not spread:
        return 0.0
    return sum((minute - centre_x) * (value - centre_y) for minute, value in series) / spread


def grows_steadily(series: Series, limit_percent_per_hour: float, floor: float) -> bool:
    """Whether a judged series grows steadily: fitted > limit %/h of its start over all of it and over its second
    half too, and its last quarter more than `floor` above its first.

    The slope catches a slow leak that noise hides between two samples; the second half's slope tells a leak
    from a process that grew to its working size and stays there (a JVM touching its heap up to -Xmx); the
    floor keeps a small count (a descriptor or a thread more) or allocator noise from failing a run.
    """
    moved = growth(series)
    if moved is None or moved.samples < MIN_JUDGED:
        return False
    return (moved.percent_per_hour > limit_percent_per_hour and late_percent_per_hour(series) > limit_percent_per_hour
            and moved.last - moved.first > floor)


def late_percent_per_hour(series: Series) -> float:
    """The fitted slope of the series' second half, as a share of its first quarter's mean, in percent per hour."""
    moved = growth(series)
    if moved is None or not moved.first:
        return 0.0
    return 100.0 * slope(series[len(series) // 2:]) * 60.0 / moved.first


def lag_grows(series: Series, limit: float) -> bool:
    """Whether a consumer group falls behind for good: lag rising over the judged samples and above `limit` at the end."""
    return len(series) >= 2 and slope(series) > 0 and series[-1][1] > limit


def quantile(ordered: Sequence[float], q: float) -> float:
    """The q-quantile of sorted values (nan when there are none)."""
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _mean(values: Sequence[float]) -> float:
    """The arithmetic mean (0 for no values)."""
    return sum(values) / len(values) if values else 0.0
