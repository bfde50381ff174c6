"""One soak of a running stack: open the streams, send for the minutes asked, sample each minute, then check every message."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import parse_qs, urlparse

from confluent_kafka import KafkaException

from infra.process import wait_until
from shared_adapters.kafka_connection import read_kafka_connection
from tests.support.api import Api
from tests.support.local_stack import LocalStackRun, environ

from .load import LATE_S, Ledger, Senders, StreamReader
from .probes import ConsumerGroups, StoredCounter, processes
from .report import Minute, minute_failures, minute_line, processes_line, trend_failures, trend_table
from .settings import SoakSettings
from .stack import READ_BACK_PAGE

STACK = "make run"  # the local_stack process itself, sampled beside the parts it started
T = TypeVar("T")


def soak(run: LocalStackRun, settings: SoakSettings, clients: list[str]) -> list[str]:
    """Load the stack for `settings.minutes`, printing each minute; return what failed (nothing: it passed)."""
    groups = ConsumerGroups(read_kafka_connection(environ(run.pids()["operator"])))
    first_port = int(run.env["RUN_CONSUMER_METRICS_PORT"])
    stored = StoredCounter({client: first_port + n for n, client in enumerate(clients)})
    owners = [clients[n % len(clients)] for n in range(settings.streams)]
    ledger = Ledger({client: sum(1 << n for n, owner in enumerate(owners) if owner == client) for client in clients})
    readers = [StreamReader(run.api.base_url, owner, run.api.tokens[owner], n, ledger) for n, owner in enumerate(owners)]
    senders = Senders(run.api.base_url, run.api.tokens, clients, settings.rate, ledger)
    minutes: list[Minute] = []
    try:
        for reader in readers:
            reader.start()
        wait_until(lambda: all(reader.opened.is_set() for reader in readers), 120, what="every stream open")
        failures = _send_for(run, settings, senders, ledger, groups, stored, minutes)
        senders.stop()
        failures += _drain(settings, ledger, groups)
        print(f"streams: {sum(r.reconnects for r in readers)} reconnects, refused opens "
              f"{dict(sum((r.refusals for r in readers), Counter())) or 'none'}", flush=True)
    except KeyboardInterrupt:
        print("\n".join(trend_table(minutes, settings)), flush=True)
        raise
    finally:
        senders.stop()
        for reader in readers:
            reader.stop()
    failures += _read_back(run.api, ledger, clients)
    print("\n".join(trend_table(minutes, settings)), flush=True)
    return failures + trend_failures(minutes, settings)


def _send_for(run: LocalStackRun, settings: SoakSettings, senders: Senders, ledger: Ledger, groups: ConsumerGroups,
              stored: StoredCounter, minutes: list[Minute]) -> list[str]:
    """Send for the minutes asked; sample, print and check each minute as it ends (into `minutes`)."""
    failures: list[str] = []
    minutes.append(Minute(0, processes({STACK: run.process.pid, **run.pids()}), groups.positions()))
    counts, statuses, events = stored.stored(), Counter(), 0
    print(processes_line(minutes[0]), flush=True)
    senders.start()
    for number in range(1, settings.minutes + 1):
        time.sleep(max(0.0, senders.began + 60 * number - time.time()))
        if run.process.poll() is not None:
            return failures + [f"minute {number}: make run exited with {run.process.returncode}"]
        with ledger.lock:
            now_statuses, now_events = Counter(ledger.statuses), ledger.events
        at = f"minute {number}"
        now_counts = stored.stored()
        failures += [f"{at}: consumer-{client}'s metrics did not answer" for client, n in now_counts.items() if n is None]
        positions = _probe(groups.positions, minutes[-1].groups, failures, f"{at}: Kafka did not answer")
        minute = Minute(number, processes({STACK: run.process.pid, **run.pids()}), positions,
                        _increase(counts, now_counts), now_statuses - statuses, now_events - events,
                        ledger.missing(time.time() - LATE_S), ledger.take_latencies())
        # A consumer that did not answer keeps its last count: its next answer covers both minutes.
        counts = {client: counts.get(client) if n is None else n for client, n in now_counts.items()}
        statuses, events = now_statuses, now_events
        print(minute_line(minute), flush=True)
        print(processes_line(minute), flush=True)
        failures += minute_failures(minute, minutes[-1])
        minutes.append(minute)
    return failures


def _probe(ask: Callable[[], T], fallback: T, failures: list[str], what: str) -> T:
    """Ask a server for a figure; on no answer, note the failure and go on with `fallback`."""
    try:
        return ask()
    except (KafkaException, OSError) as error:  # TimeoutError is an OSError
        failures.append(f"{what}: {error}")
        return fallback


def _increase(before: dict[str, float | None], now: dict[str, float | None]) -> int:
    """How much the counters that answered both times rose; one that fell (its process started again) counts from 0."""
    rises = [(value - earlier if value >= earlier else value) for key, value in now.items()
             if value is not None and (earlier := before.get(key)) is not None]
    return int(sum(rises))


def _drain(settings: SoakSettings, ledger: Ledger, groups: ConsumerGroups) -> list[str]:
    """Wait until every accepted message reached its streams and every group caught up; name what did not."""
    deadline, failures = time.monotonic() + settings.drain_s, []
    while True:
        positions = _probe(groups.positions, {}, failures, "after the last send: Kafka did not answer")
        missing = ledger.missing(time.time())
        behind = {group: position.lag for group, position in positions.items() if position.lag}
        if (not missing and not behind) or time.monotonic() >= deadline:
            break
        time.sleep(1.0)
    if missing:
        failures.append(f"{missing} accepted messages never reached every stream they belong on "
                        f"within {settings.drain_s:g}s of the last send")
    failures += [f"group {group} still {lag} records behind {settings.drain_s:g}s after the last send"
                 for group, lag in behind.items()]
    return failures


def _read_back(api: Api, ledger: Ledger, clients: list[str]) -> list[str]:
    """Read every accepted message back as its recipient, page by page; name what is missing or listed twice."""
    failures, began = [], time.monotonic()
    for client in clients:
        expected = {message_id for message_id, sent in ledger.sent.items() if sent.recipient == client}
        try:
            listed = Counter(message["messageId"] for message in _pages(api, client))
        except (RuntimeError, OSError) as error:
            failures.append(f"the messages to {client} cannot be read back: {error}")
            continue
        if missing := expected - listed.keys():
            failures.append(f"{len(missing)} of the {len(expected)} accepted messages to {client} cannot be read back "
                            f"(e.g. {sorted(missing)[:3]})")
        if twice := [message_id for message_id, count in listed.items() if count > 1]:
            failures.append(f"{len(twice)} messages to {client} are listed more than once (e.g. {twice[:3]})")
    print(f"read back {len(ledger.sent)} accepted messages as their recipients in {time.monotonic() - began:.0f} s",
          flush=True)
    return failures


def _pages(api: Api, client: str) -> list[dict]:
    """Every message to `client`, following GET /messages's pages with its token (a 503 asked again, twice)."""
    items, cursor = [], None
    while True:
        for _ in range(3):
            reply = api.get("/messages", to=client, limit=READ_BACK_PAGE, **({"cursor": cursor} if cursor else {}))
            if reply.status != 503:
                break
            time.sleep(float(reply.headers.get("Retry-After", "5")))
        if reply.status != 200:
            raise RuntimeError(f"GET /messages as {client} answered {reply.status}: {reply.body}")
        items += reply.body
        link = reply.headers.get("Link")
        if not link:
            return items
        cursor = parse_qs(urlparse(link[link.index("<") + 1:link.index(">")]).query)["cursor"][0]
