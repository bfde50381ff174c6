"""Live delivery: resume positions, and the hub that hands each stored event to the streams it concerns.

A client's stream carries every message it sent or received. Records are keyed by recipient,
so all messages to one recipient sit in one partition, and the consumer that stores them
announces them in offset order. A position is therefore, for each recipient among the
client's messages, the highest offset delivered: an event is new exactly when its offset
is above the position's entry for its recipient. A recipient missing from a position means
none of the client's messages to it was delivered yet.
"""

import base64
import binascii
import json
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from shared_domain.json_text import MalformedJson, loads
from shared_domain.message import CLIENT_ID_PATTERN
from shared_domain.stored_events import StoredEvent

MAX_POSITION_CHARS = 8192
# How long a stream's start or resume waits for the views to read as far as the live feed already has (they
# trail it by the projector's delay, well under a second unless the projector is down or far behind).
CATCH_UP_S = 5.0
CATCH_UP_POLL_S = 0.05


class InvalidPosition(ValueError):
    """A resume position this service did not issue."""


class ResumeTooFar(Exception):
    """More messages were missed than a stream replays; the client is to reload its history."""


class TooManyStreams(Exception):
    """The client already has as many open streams as it may."""


class ViewsBehind(Exception):
    """The views have not read, in time, as far as the live feed had before the stream subscribed; worth retrying."""


@dataclass
class Position:
    """For each recipient of a client's messages, the highest source offset delivered to the client."""

    offsets: dict[str, int] = field(default_factory=dict)

    def is_new(self, event: StoredEvent) -> bool:
        """Whether the event is beyond what this position has delivered."""
        return event.source.offset > self.offsets.get(event.message.recipient, -1)

    def advance(self, event: StoredEvent) -> None:
        """Count the event as delivered."""
        self.offsets[event.message.recipient] = max(event.source.offset, self.offsets.get(event.message.recipient, -1))

    def encode(self) -> str:
        """The position as an opaque, URL-safe text (an SSE `id`)."""
        text = json.dumps(self.offsets, separators=(",", ":"), sort_keys=True).encode()
        return base64.urlsafe_b64encode(text).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> "Position":
        """Read a position issued by `encode`, or raise InvalidPosition."""
        if len(text) > MAX_POSITION_CHARS:
            raise InvalidPosition(f"longer than {MAX_POSITION_CHARS} characters")
        try:
            # A position is one flat object: anything nested is refused before it is parsed.
            offsets = loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), max_depth=1)
        except (binascii.Error, ValueError, MalformedJson):
            raise InvalidPosition("not a position this service issued") from None
        if not isinstance(offsets, dict) or not all(
                isinstance(client, str) and CLIENT_ID_PATTERN.fullmatch(client)
                and type(offset) is int and 0 <= offset < 2**63 for client, offset in offsets.items()):
            raise InvalidPosition("not a position this service issued")
        return cls(offsets)


class Subscription:
    """One open stream's queue of events; a reader that falls `capacity` events behind is cut off."""

    def __init__(self, client: str, capacity: int):
        self.client = client
        self._events: queue.Queue = queue.Queue(capacity)
        self.overflowed = False

    def offer(self, event: StoredEvent | None) -> None:
        """Queue an event (None: the stream is to end); past capacity, mark the reader as too slow."""
        try:
            self._events.put_nowait(event)
        except queue.Full:
            self.overflowed = True

    def next(self, timeout: float) -> StoredEvent | None:
        """The next event; raises queue.Empty when none came within `timeout`."""
        return self._events.get(timeout=timeout)


class Hub:
    """The open streams of one process, by client, and the hand-out of each event to those it concerns."""

    def __init__(self, per_client: int, capacity: int):
        self._per_client, self._capacity = per_client, capacity
        self._lock = threading.Lock()
        self._by_client: dict[str, set[Subscription]] = {}
        self._closed = False

    def subscribe(self, client: str) -> Subscription:
        """Open a subscription for the client, or raise TooManyStreams."""
        with self._lock:
            streams = self._by_client.setdefault(client, set())
            if len(streams) >= self._per_client:
                raise TooManyStreams(f"at most {self._per_client} open streams per client")
            subscription = Subscription(client, self._capacity)
            if self._closed:
                subscription.offer(None)
            streams.add(subscription)
            return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Forget a subscription whose stream ended."""
        with self._lock:
            streams = self._by_client.get(subscription.client, set())
            streams.discard(subscription)
            if not streams:
                self._by_client.pop(subscription.client, None)

    @property
    def empty(self) -> bool:
        """Whether no stream is open."""
        with self._lock:
            return not self._by_client

    def of_interest(self, events: Iterable[StoredEvent]) -> list[StoredEvent]:
        """The events an open stream would be given: those whose sender or recipient has one."""
        with self._lock:
            return [event for event in events
                    if event.message.recipient in self._by_client or event.message.sender in self._by_client]

    def publish(self, events: Iterable[StoredEvent]) -> None:
        """Offer each event to every subscription of its sender and of its recipient."""
        with self._lock:
            for event in events:
                for client in {event.message.sender, event.message.recipient}:
                    for subscription in self._by_client.get(client, ()):
                        subscription.offer(event)

    def close(self) -> None:
        """End every stream (the process is stopping); clients reconnect elsewhere."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for streams in self._by_client.values():
                for subscription in streams:
                    subscription.offer(None)


class History(Protocol):
    """What the store knows of a client's messages, by source position."""

    def position_now(self, client: str) -> Position:
        """The position that covers every stored message of the client."""

    def missed(self, client: str, position: Position, limit: int) -> list[StoredEvent]:
        """The client's stored messages beyond the position, each recipient's in offset order."""

    def applied(self, partitions: Iterable[int]) -> dict[int, int]:
        """For each stored-events partition the views say (those of a projector older than this left out), the offset
        before which they applied every event."""


@dataclass(frozen=True)
class StreamItem:
    """One thing to tell a stream: a message, where it stands now, a heartbeat, or that it is cut off."""

    kind: str  # "message", "position", "heartbeat" or "overflow"
    position: str | None = None
    event: StoredEvent | None = None


class LiveStream:
    """The items of one open stream; closing it (the client left, the response ended) frees its place."""

    def __init__(self, items: Iterator[StreamItem], subscription: Subscription, hub: Hub):
        self._items, self._subscription, self._hub = items, subscription, hub

    def __iter__(self) -> Iterator[StreamItem]:
        return self._items

    def close(self) -> None:
        """End the stream, whether or not it was ever read."""
        self._items.close()
        self._hub.unsubscribe(self._subscription)


def open_stream(client: str, after: Position | None, hub: Hub, history: History, heartbeat_s: float,
                backfill_limit: int, feed_read: Callable[[], dict[int, int]] = dict, catch_up_s: float = CATCH_UP_S,
                clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> LiveStream:
    """Subscribe first, then read what was missed, then go live, dropping what the store already gave.

    What the live feed read before the subscription (`feed_read`: by stored-events partition, the
    offset it reads next), and what was announced before the feed started, reach the stream only
    through the views, which follow the same topic on their own: they are waited for (up to
    `catch_up_s`) until they have read as far. Raises TooManyStreams, ViewsBehind, or the store's
    error, before anything is sent.
    """
    subscription = hub.subscribe(client)
    try:
        _wait_for_views(feed_read(), history, catch_up_s, clock, sleep)
        position = history.position_now(client) if after is None else after
        missed = [] if after is None else history.missed(client, position, backfill_limit)
    except BaseException:
        hub.unsubscribe(subscription)
        raise
    return LiveStream(_items(subscription, position, missed, heartbeat_s), subscription, hub)


def _wait_for_views(read: dict[int, int], history: History, catch_up_s: float, clock: Callable[[], float],
                    sleep: Callable[[float], None]) -> None:
    """Return once the views have read as far as `read` says; ViewsBehind after `catch_up_s`.

    Views that say nothing of a partition have read nothing of it yet, or their projector predates
    the saying (an upgrade under way): once the wait is over, those alone do not stop the stream.
    """
    deadline = clock() + catch_up_s
    while True:
        applied = history.applied(read)
        behind = {partition: offset for partition, offset in read.items() if applied.get(partition, 0) < offset}
        if not behind:
            return
        if clock() >= deadline:
            if not behind.keys() & applied.keys():
                return
            raise ViewsBehind(f"the views trail the live feed in partition(s) {sorted(behind)[:10]}")
        sleep(CATCH_UP_POLL_S)


def _items(subscription: Subscription, position: Position, missed: list[StoredEvent],
           heartbeat_s: float) -> Iterator[StreamItem]:
    """The stream: where it starts, what was missed, then live events and heartbeats until it ends."""
    yield StreamItem("position", position.encode())
    for event in missed:
        if position.is_new(event):
            position.advance(event)
            yield StreamItem("message", position.encode(), event)
    while not subscription.overflowed:
        try:
            event = subscription.next(heartbeat_s)
        except queue.Empty:
            yield StreamItem("heartbeat")
            continue
        if event is None:
            return
        if position.is_new(event):
            position.advance(event)
            yield StreamItem("message", position.encode(), event)
    yield StreamItem("overflow", position.encode())
