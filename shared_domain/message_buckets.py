"""Message buckets: every message also kept in the order it was stored, BUCKET to a document, so any page is a few lookups.

A sequence is what one kind of page draws from, all of it announced in one stored-events
partition and so written by the one projector that owns that partition:
- a conversation direction, what a sender sent to a recipient: `b/<recipient>/<sender>`;
- what a client received: `r/<client>`;
- what a client sent to the recipients of one stored-events partition: `s/<client>/<partition>`.
The i-th message of a sequence, counted by the view that heads it, is in its bucket i // BUCKET.
A page's cursor carries, per sequence, the bucket the page stopped in; without one (a first page
with `since` or `until`, an older cursor) the start is found by halving, log2(buckets) lookups.
Buckets follow storing order and pages follow (sentAt, _id): a page also reads the neighbouring
buckets that DISORDER says may hold its messages, so it is exact while no message of a sequence is
stored after one sent more than DISORDER later.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from .clock import as_utc

BUCKET = 50
# A message reaches Kafka within KAFKA_DELIVERY_TIMEOUT_MS (5 s by default) of its sentAt, or is refused; twice that
# also covers the clocks of several producer hosts. So within a sequence, a message stored after another was sent
# at most this long before it: how far a page reads past the buckets it needs.
DISORDER = 10.0
_PREFIXES = ("b/", "r/", "s/")


def direction_sequence(recipient: str, sender: str) -> str:
    """The sequence of what `sender` sent to `recipient` ('/' is in no client id)."""
    return f"b/{recipient}/{sender}"


def received_sequence(client: str) -> str:
    """The sequence of what the client received."""
    return f"r/{client}"


def sent_sequence(client: str, partition: int) -> str:
    """The sequence of what the client sent to the recipients of one stored-events partition."""
    return f"s/{client}/{partition}"


def bucket_id(sequence: str, number: int) -> str:
    """The _id of a sequence's bucket."""
    return f"{sequence}/{number}"


def is_bucket(view_id: str) -> bool:
    """Whether a view _id names a bucket."""
    return view_id.startswith(_PREFIXES)


def empty_bucket(view_id: str) -> dict:
    """A bucket holding nothing yet."""
    return {"_id": view_id, "messages": []}


def order_key(message: dict) -> tuple[datetime, str]:
    """Where a message document sits in a page: (sentAt, _id)."""
    return as_utc(message["sentAt"]), message["_id"]


def add_to_bucket(bucket: dict, message: dict) -> bool:
    """Add a message document unless the bucket holds it already (a batch announced again); whether it was added."""
    if any(known["_id"] == message["_id"] for known in bucket["messages"]):
        return False
    bucket["messages"] = sorted([*bucket["messages"], message], key=order_key)
    return True


def is_full(bucket: dict) -> bool:
    """Whether a bucket will change no more."""
    return len(bucket["messages"]) >= BUCKET


@dataclass(frozen=True)
class Sequence:
    """A sequence and how many messages its head view has counted into it."""

    id: str
    count: int

    @property
    def buckets(self) -> int:
        """How many buckets hold its messages."""
        return -(-self.count // BUCKET)


@dataclass(frozen=True)
class Bounds:
    """What a page holds: messages beyond a cursor's (sentAt, _id), sent in [since, until), at most `limit`."""

    limit: int
    newest_first: bool = False
    after: tuple[datetime, str] | None = None
    since: datetime | None = None
    until: datetime | None = None

    def holds(self, message: dict) -> bool:
        """Whether the message belongs on pages with these bounds."""
        key = order_key(message)
        if self.after is not None and (key >= self.after if self.newest_first else key <= self.after):
            return False
        return (self.since is None or key[0] >= self.since) and (self.until is None or key[0] < self.until)


def page(sequences: list[Sequence], look_up: Callable[[str], dict | None], bounds: Bounds,
         hints: tuple[int, ...] | None = None) -> tuple[list[dict], tuple[int, ...]]:
    """A page of message documents from the sequences, and per sequence the bucket the next page starts from.

    `hints` are what the previous page returned; they are ignored unless there is one per sequence.
    """
    buckets = _Buckets(look_up)
    if hints is not None and len(hints) != len(sequences):
        hints = None
    found, starts = [], []
    for n, sequence in enumerate(sequences):
        if not sequence.buckets:
            starts.append(0)
            continue
        start = hints[n] if hints is not None else _start(sequence, buckets, bounds)
        starts.append(min(max(start, 0), sequence.buckets - 1))
        found += [(order_key(message), n, number, message)
                  for number, message in _walk(sequence, buckets, bounds, starts[-1])]
    found.sort(key=lambda item: item[0], reverse=bounds.newest_first)
    messages, listed, next_hints = [], set(), list(starts)
    for _, n, number, message in found:
        if len(messages) == bounds.limit:
            break
        next_hints[n] = number
        if message["_id"] not in listed:  # a client's message to itself is in two of its sequences
            listed.add(message["_id"])
            messages.append(message)
    return messages, tuple(next_hints)


class _Buckets:
    """The buckets one page has looked up, each looked up once."""

    def __init__(self, look_up: Callable[[str], dict | None]):
        self._look_up, self._seen = look_up, {}

    def messages(self, sequence: Sequence, number: int) -> list[dict]:
        """The bucket's messages in (sentAt, _id) order; none for a bucket the store does not hold."""
        key = bucket_id(sequence.id, number)
        if key not in self._seen:
            self._seen[key] = (self._look_up(key) or {}).get("messages", [])
        return self._seen[key]


def _walk(sequence: Sequence, buckets: _Buckets, bounds: Bounds, start: int) -> list[tuple[int, dict]]:
    """(bucket, message) for every message of the sequence the page may hold, reading out from `start` both ways.

    In page order (oldest or newest first), a message stored after another is at most DISORDER
    behind it. So the buckets before `start` are read back until one lies wholly before the page's
    lower bound by more than that, and those after until one lies beyond the page's last message
    or its upper bound by more than that.
    """
    step = -1 if bounds.newest_first else 1
    time_of = (lambda message: -_seconds(message)) if bounds.newest_first else _seconds
    lower, upper = _page_bounds(bounds)
    taken: list[tuple[int, dict]] = []
    number = start - step
    while lower is not None and 0 <= number < sequence.buckets:
        messages = buckets.messages(sequence, number)
        taken += [(number, message) for message in messages if bounds.holds(message)]
        if not messages or min(map(time_of, messages)) + DISORDER < lower:
            break
        number -= step
    number = start
    while 0 <= number < sequence.buckets:
        messages = buckets.messages(sequence, number)
        taken += [(number, message) for message in messages if bounds.holds(message)]
        reach = max(map(time_of, messages), default=None)
        if reach is None or (upper is not None and reach - DISORDER > upper):
            break
        if len(taken) >= bounds.limit:
            last = sorted(time_of(message) for _, message in taken)[bounds.limit - 1]
            if reach - DISORDER > last:
                break
        number += step
    return taken


def _seconds(message: dict) -> float:
    """When a message was sent, in seconds."""
    return as_utc(message["sentAt"]).timestamp()


def _page_bounds(bounds: Bounds) -> tuple[float | None, float | None]:
    """The page's lower and upper time bounds, in seconds in page order (negated when newest first)."""
    after = bounds.after[0].timestamp() if bounds.after else None
    since = bounds.since.timestamp() if bounds.since else None
    until = bounds.until.timestamp() if bounds.until else None
    if bounds.newest_first:
        lower = after if after is not None else until
        return (None if lower is None else -lower), (None if since is None else -since)
    return (after if after is not None else since), until


def _start(sequence: Sequence, buckets: _Buckets, bounds: Bounds) -> int:
    """The bucket a page without a cursor hint starts from: found by halving when the page has a bound to find."""
    if bounds.newest_first:
        upper = bounds.after or ((bounds.until, "") if bounds.until else None)
        if upper is None:
            return sequence.buckets - 1
        # The last bucket whose first message comes before the bound.
        low, high = 0, sequence.buckets - 1
        while low < high:
            middle = (low + high + 1) // 2
            messages = buckets.messages(sequence, middle)
            if messages and order_key(messages[0]) < upper:
                low = middle
            else:
                high = middle - 1
        return low
    lower = bounds.after or ((bounds.since, "") if bounds.since else None)
    if lower is None:
        return 0
    # The first bucket whose last message comes after the bound.
    low, high = 0, sequence.buckets - 1
    while low < high:
        middle = (low + high) // 2
        messages = buckets.messages(sequence, middle)
        if messages and order_key(messages[-1]) > lower:
            high = middle
        else:
            low = middle + 1
    return low
