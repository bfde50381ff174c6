"""Telling when librdkafka has left a client with no broker to reach, a state it never leaves on its own.

librdkafka drops the brokers a metadata response leaves out, and a lone broker in controlled
shutdown answers "0 brokers, 1 topics". Most often the client then bootstraps again; sometimes it
is left knowing no broker, and sends no request again (confluentinc/librdkafka#5301; with 2.16.0,
after a single broker's restart, a consumer here found "no broker available" for minutes while the
process's other clients were back). Its statistics tell it: none of the brokers they list is one
it was configured with or learned. What is left is to replace the client.
"""

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from confluent_kafka import Consumer, Producer

log = logging.getLogger(__name__)
# How often a watched client reports its brokers.
STATISTICS_INTERVAL_MS = 5000
# How long a client may list no broker before it counts as orphaned: when librdkafka bootstraps again on its own, it
# lists the configured brokers again at once.
ORPHANED_AFTER_S = 12.0
REACHABLE_SOURCES = frozenset({"configured", "learned"})
# A reachable broker as librdkafka writes it into a report.
_REACHABLE_AS_WRITTEN = tuple(f'"source":"{source}"' for source in sorted(REACHABLE_SOURCES))


class BrokerPresence:
    """Fed a client's statistics; says whether the client has listed no broker it could connect to for `after_s`."""

    def __init__(self, after_s: float = ORPHANED_AFTER_S, clock=time.monotonic):
        self._after_s, self._clock = after_s, clock
        self._none_since: float | None = None

    def config(self) -> dict:
        """The client settings that feed this from the client's statistics."""
        return {"statistics.interval.ms": STATISTICS_INTERVAL_MS, "stats_cb": self.observe}

    def observe(self, statistics: str) -> None:
        """Take one statistics report (librdkafka's JSON)."""
        if _lists_reachable_broker(statistics):
            self._none_since = None
        elif self._none_since is None:
            self._none_since = self._clock()

    def orphaned(self) -> bool:
        """Whether the reports have listed no reachable broker for `after_s` or longer."""
        return self._none_since is not None and self._clock() - self._none_since >= self._after_s


def _lists_reachable_broker(statistics: str) -> bool:
    """Whether a statistics report lists a configured or learned broker.

    The common case costs a substring search (parsing every report made make bench's consumer stage
    slower in three interleaved pairs). Any other report is read as JSON, so a change of librdkafka's
    layout costs time, not a wrong answer.
    """
    if any(needle in statistics for needle in _REACHABLE_AS_WRITTEN):
        return True
    brokers = json.loads(statistics).get("brokers", {})
    return any(broker.get("source") in REACHABLE_SOURCES for broker in brokers.values())


class _Watched:
    """What makes a client watched: its statistics feed a BrokerPresence (served by its poll())."""

    def __init__(self, config: dict, presence: BrokerPresence | None = None):
        self._presence = presence or BrokerPresence()
        super().__init__({**config, **self._presence.config()})

    def orphaned(self) -> bool:
        """Whether this client is past recovering: replace it (see the module's docstring)."""
        return self._presence.orphaned()


class WatchedConsumer(_Watched, Consumer):
    """A consumer that tells when librdkafka has left it no broker to reach."""


class WatchedProducer(_Watched, Producer):
    """A producer that tells when librdkafka has left it no broker to reach."""


Client = TypeVar("Client", WatchedConsumer, WatchedProducer)


class Renewing(Generic[Client]):
    """The client `connect` made last (or the `client` it starts with), replaced by a new one when asked for once it is
    orphaned (the old one goes to `retire`, by default closed in the background). It stands for that client: what it
    is asked goes to current()."""

    def __init__(self, connect: Callable[[], Client], name: str, retire: Callable[[Client, str], None] | None = None,
                 client: Client | None = None):
        self._connect, self._name, self._retire = connect, name, retire or abandon
        self._client = connect() if client is None else client
        self._lock = threading.Lock()

    def current(self) -> Client:
        """The client to use now (asking costs a clock read while it is not orphaned)."""
        client = self._client
        if not client.orphaned():
            return client
        with self._lock:
            if self._client is client:
                self._retire(client, self._name)
                self._client = self._connect()
            return self._client

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.current(), name)


def abandon(consumer: Consumer, name: str) -> None:
    """Close an orphaned consumer on a thread of its own: its close waits for requests no broker will ever answer."""
    _retire_in_background(name, consumer.close)


def drain(producer: Producer, name: str, timeout_s: float) -> None:
    """Serve an orphaned producer's last delivery reports (failures, within its message timeout) on a thread of its
    own, so that whoever waits for one is answered."""
    _retire_in_background(name, producer.flush, timeout_s)


def _retire_in_background(name: str, retire: Callable, *args) -> None:
    """Say that a client is being replaced, and let `retire(*args)` end it on a daemon thread."""
    log.error("%s: librdkafka left the client no broker to reach (confluentinc/librdkafka#5301); replacing it", name)
    threading.Thread(target=retire, args=args, name=f"{name}-retired", daemon=True).start()
