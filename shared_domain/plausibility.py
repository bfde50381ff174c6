"""Whether a claimed position in the message topic can be real.

Stored events and dead letters name the record of the message topic they stand for, and anyone
who can write to their topics can name any position. The cheap checks: the position is in the
message topic, in one of its partitions, and before that partition's end (its high watermark).
"""

import time
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Generic, TypeVar

from .failures import SourcePosition
from .partitioning import partition_of

# The ends of the given partitions of the message topic, looked up now: None for a partition that
# does not exist; a partition left out could not be looked up.
EndsLookup = Callable[[Collection[int]], Mapping[int, int | None]]
# How far past a partition's end a genuine position can be seen (a new leader's end trails the old one's by what
# its followers had not yet confirmed), and how often such a position is looked up again.
REACH = 10_000
RECHECK_S = 0.2
# How long the services wait for such a position before they drop it (every other one is judged at once): until a
# new leader has caught up with what its predecessor confirmed and the clients' metadata has settled. The live feed
# holds such a position back without waiting on it (see Holdback); the projectors, which nobody waits on, wait.
PATIENCE_S = 30.0

Item = TypeVar("Item")


class EndsUnknown(Exception):
    """Kafka did not say where a partition of the message topic ends: nothing claiming it can be judged yet."""


def implausibility(source: SourcePosition, messages_topic: str, end: int | None) -> str | None:
    """Why `source` cannot be a record of the message topic whose partition ends at `end` (None: no such partition)."""
    if source.topic != messages_topic:
        return f"topic {source.topic[:100]!r} is not the message topic"
    if source.offset < 0:
        return f"offset {source.offset} is negative"
    if end is None or source.partition < 0:
        return f"partition {source.partition} of the message topic does not exist"
    if source.offset >= end:
        return f"offset {source.offset} is at or beyond the end ({end}) of partition {source.partition}"
    return None


def misplaced(recipient: str, source: SourcePosition, partitions: int | None) -> str | None:
    """Why a message to `recipient` cannot be at `source` in a message topic of `partitions` (None: not known), or None."""
    if partitions is None:
        return None
    expected = partition_of(recipient.encode(), partitions)
    if source.partition != expected:
        return f"a message to {recipient} is in partition {expected}, not {source.partition}"
    return None


class SourceCheck:
    """Judges claimed positions against the last known end of each partition, looking it up only when one reaches it."""

    def __init__(self, messages_topic: str, look_up: EndsLookup, patience_s: float = 0.0,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        self.messages_topic, self._look_up = messages_topic, look_up
        self._patience, self._clock, self._sleep = patience_s, clock, sleep
        self._ends: dict[int, int] = {}  # partitions that exist only, so it is never larger than the topic
        self._unknown: set[int] = set()  # partitions the last look-up asked about and got no answer for

    def judge(self, sources: Sequence[SourcePosition]) -> list[str | None]:
        """For each position, why it cannot be real, or None; raise EndsUnknown when Kafka does not say.

        A position just past its partition's end may be genuine: a leader elected a moment ago reports
        an end (high watermark) behind what the previous one served. Such positions, and those of a
        partition whose end Kafka does not give (it is restarting), are looked up again, a few times a
        second, for up to the check's patience before they are judged; a position never judged for
        want of an answer is not judged implausible, since that would drop a genuine record.
        """
        deadline = self._clock() + self._patience
        while True:
            problems = self.judge_now(sources)
            pending = [source for source, problem in zip(sources, problems) if problem is not None and self.pending(source)]
            if not pending:
                return problems
            if self._clock() >= deadline:
                unknown = sorted({source.partition for source in pending if self._end_unknown(source)})
                if unknown:
                    raise EndsUnknown(f"the end of partition(s) {unknown[:10]} of {self.messages_topic} was not given")
                return problems
            self._sleep(RECHECK_S)

    def pending(self, source: SourcePosition) -> bool:
        """Whether a position judged implausible may yet turn out real: just past its partition's end, or that end unknown."""
        return self.just_past_end(source) or self._end_unknown(source)

    def just_past_end(self, source: SourcePosition) -> bool:
        """Whether a position is at most REACH records past its partition's last known end."""
        end = self._ends.get(source.partition) if source.topic == self.messages_topic else None
        return end is not None and end <= source.offset < end + REACH

    def judge_now(self, sources: Sequence[SourcePosition]) -> list[str | None]:
        """For each position, why it cannot be real, or None, waiting for nothing; each partition's end is looked up at
        most once a call."""
        stale = {source.partition for source in sources if self._needs_look_up(source)}
        fresh = dict(self._look_up(stale)) if stale else {}
        self._ends.update({partition: end for partition, end in fresh.items() if end is not None})
        self._unknown = stale - fresh.keys()
        return [self._problem(source, fresh) for source in sources]

    def _end_unknown(self, source: SourcePosition) -> bool:
        """Whether the last look-up for the position's partition went unanswered and no end is known."""
        return (source.topic == self.messages_topic and source.partition in self._unknown
                and source.partition not in self._ends)

    def _needs_look_up(self, source: SourcePosition) -> bool:
        """Whether the position could only be judged after looking its partition's end up again."""
        if source.topic != self.messages_topic or source.partition < 0 or source.offset < 0:
            return False
        return source.partition not in self._ends or source.offset >= self._ends[source.partition]

    def _problem(self, source: SourcePosition, fresh: Mapping[int, int | None]) -> str | None:
        """Why the position cannot be real, given the ends just looked up and those known before."""
        if source.topic != self.messages_topic or source.partition < 0 or source.offset < 0:
            return implausibility(source, self.messages_topic, None)
        if source.partition in fresh:
            return implausibility(source, self.messages_topic, fresh[source.partition])
        if source.partition in self._ends:
            return implausibility(source, self.messages_topic, self._ends[source.partition])
        return f"the end of partition {source.partition} could not be looked up"


class Holdback(Generic[Item]):
    """Judges items by their claimed positions as they come, waiting on none.

    An item just past its partition's known end is held back, and every later item of that partition with it (they
    stay in order), until the end reaches it or `patience_s` has passed since it came; items of other partitions go
    on meanwhile. At each `admit` only the first held item of each partition is judged again, so holding a burst
    back costs one look at its head, not one per item.
    """

    def __init__(self, check: SourceCheck, source_of: Callable[[Item], SourcePosition], patience_s: float = 0.0,
                 clock: Callable[[], float] = time.monotonic):
        self._check, self._source_of, self._patience, self._clock = check, source_of, patience_s, clock
        self._held: dict[tuple[str, int], list[tuple[float, Item]]] = {}  # by partition, in arrival order

    @property
    def holding(self) -> bool:
        """Whether any item is held back."""
        return bool(self._held)

    def admit(self, items: Sequence[Item]) -> tuple[list[Item], list[tuple[Item, str]]]:
        """The items to hand on now (released ones first, in order), and those dropped with why; the rest stay held."""
        now = self._clock()
        waiting, self._held = self._held, {}
        released: list[tuple[float, Item]] = []
        for (lane, entries), problem in zip(waiting.items(), self._judge([entries[0] for entries in waiting.values()])):
            if self._waits(entries[0], problem, now):
                self._held[lane] = entries
            else:
                released += entries
        fresh = []
        for entry in [*released, *((now + self._patience, item) for item in items)]:
            if self._lane(entry) in self._held:
                self._held[self._lane(entry)].append(entry)
            else:
                fresh.append(entry)
        ready, dropped = [], []
        for entry, problem in zip(fresh, self._judge(fresh)):
            if self._lane(entry) in self._held or self._waits(entry, problem, now):
                self._held.setdefault(self._lane(entry), []).append(entry)
            elif problem is None:
                ready.append(entry[1])
            else:
                dropped.append((entry[1], problem))
        return ready, dropped

    def _judge(self, entries: Sequence[tuple[float, Item]]) -> list[str | None]:
        """Why each entry's position cannot be real, or None; one look-up per partition at most."""
        return self._check.judge_now([self._source_of(item) for _, item in entries]) if entries else []

    def _waits(self, entry: tuple[float, Item], problem: str | None, now: float) -> bool:
        """Whether an entry judged `problem` is to be held: it may yet turn out real and its patience has not run out."""
        deadline, item = entry
        return problem is not None and now < deadline and self._check.pending(self._source_of(item))

    def _lane(self, entry: tuple[float, Item]) -> tuple[str, int]:
        """The partition an entry claims to come from: its items stay in order."""
        source = self._source_of(entry[1])
        return source.topic, source.partition
