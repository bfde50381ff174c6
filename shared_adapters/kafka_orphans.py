"""Telling when librdkafka has left a consumer with no broker to reach, a state it never leaves on its own.

librdkafka drops the brokers a metadata response leaves out. A broker in controlled shutdown, the
only one a client knew, can answer with none at all: the client then knows no broker, sends no
request again and never bootstraps again (confluentinc/librdkafka#5301; seen with 2.16.0 when a
single broker restarts). Its statistics tell it: none of the brokers they list is one it was
configured with or learned. What is left is to replace the client.
"""

import json
import logging
import threading
import time

from confluent_kafka import Consumer

log = logging.getLogger(__name__)
# How often a watched client reports its brokers.
STATISTICS_INTERVAL_MS = 5000
# How long a client may list no broker before it counts as orphaned: when librdkafka bootstraps again on its own, it
# lists the configured brokers again at once.
ORPHANED_AFTER_S = 12.0
REACHABLE_SOURCES = frozenset({"configured", "learned"})


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
        brokers = json.loads(statistics).get("brokers", {})
        if any(broker.get("source") in REACHABLE_SOURCES for broker in brokers.values()):
            self._none_since = None
        elif self._none_since is None:
            self._none_since = self._clock()

    def orphaned(self) -> bool:
        """Whether the reports have listed no reachable broker for `after_s` or longer."""
        return self._none_since is not None and self._clock() - self._none_since >= self._after_s


class WatchedConsumer(Consumer):
    """A consumer that tells when librdkafka has left it no broker to reach; its statistics are served by poll()."""

    def __init__(self, config: dict, presence: BrokerPresence | None = None):
        self._presence = presence or BrokerPresence()
        super().__init__({**config, **self._presence.config()})

    def orphaned(self) -> bool:
        """Whether this client is past recovering: replace it (see the module's docstring)."""
        return self._presence.orphaned()


def abandon(consumer: Consumer, name: str) -> None:
    """Close an orphaned consumer on a thread of its own: its close waits for requests no broker will ever answer."""
    log.error("%s: librdkafka left the client no broker to reach (confluentinc/librdkafka#5301); replacing it", name)
    threading.Thread(target=consumer.close, name=f"{name}-abandoned", daemon=True).start()
