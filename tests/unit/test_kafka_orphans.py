"""Telling an orphaned librdkafka client from its statistics: no configured or learned broker listed for long enough."""

import json
import threading

import pytest

from shared_adapters.kafka_connection import KafkaConnection
from shared_adapters.kafka_orphans import ORPHANED_AFTER_S, BrokerPresence, Renewing, WatchedConsumer
from infra.process import wait_until


class Clock:
    """A clock the test moves."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class Kept(BrokerPresence):
    """A presence that keeps every report it takes, asking for one every 100 ms."""

    def __init__(self):
        super().__init__()
        self.reports = []

    def config(self) -> dict:
        return {**super().config(), "statistics.interval.ms": 100}

    def observe(self, statistics: str) -> None:
        self.reports.append(statistics)
        super().observe(statistics)


@pytest.fixture(scope="module")
def report() -> str:
    """One statistics report of a real librdkafka consumer, configured with a broker nobody listens on."""
    kept = Kept()
    consumer = WatchedConsumer(KafkaConnection("127.0.0.1:9").config(**{"group.id": "orphans", "client.id": "orphans"}),
                               presence=kept)
    try:
        wait_until(lambda: consumer.poll(0.2) is None and kept.reports, timeout=30, what="a statistics report")
        assert not consumer.orphaned()
    finally:
        consumer.close()
    return kept.reports[-1]


def without_reachable_brokers(report: str) -> str:
    """The report as an orphaned client gives it: its configured and learned brokers gone, the others left."""
    statistics = json.loads(report)
    statistics["brokers"] = {name: broker for name, broker in statistics["brokers"].items()
                             if broker["source"] not in ("configured", "learned")}
    return json.dumps(statistics)


def test_a_client_listing_its_configured_broker_is_never_orphaned_even_when_that_broker_is_down(report):
    clock = Clock()
    presence = BrokerPresence(clock=clock)
    assert any(broker["source"] == "configured" for broker in json.loads(report)["brokers"].values())
    for _ in range(10):
        presence.observe(report)
        clock.now += ORPHANED_AFTER_S
    assert not presence.orphaned()


def test_a_report_laid_out_otherwise_is_read_all_the_same(report):
    clock, spaced = Clock(), json.dumps(json.loads(report), indent=1)
    presence = BrokerPresence(clock=clock)
    assert '"source":"configured"' not in spaced
    presence.observe(without_reachable_brokers(report))
    clock.now += ORPHANED_AFTER_S - 1
    presence.observe(spaced)
    clock.now += ORPHANED_AFTER_S
    assert not presence.orphaned(), "a broker listed in another layout was missed"


def test_a_client_listing_no_reachable_broker_is_orphaned_once_that_lasted_long_enough(report):
    clock, orphan = Clock(), without_reachable_brokers(report)
    presence = BrokerPresence(clock=clock)
    assert json.loads(orphan)["brokers"], "the logical and internal brokers are still listed"
    presence.observe(orphan)
    clock.now += ORPHANED_AFTER_S - 0.1
    presence.observe(orphan)
    assert not presence.orphaned(), "orphaned before the patience ran out"
    clock.now += 0.1
    assert presence.orphaned()


def test_a_broker_listed_again_before_the_patience_ran_out_starts_it_over(report):
    clock, orphan = Clock(), without_reachable_brokers(report)
    presence = BrokerPresence(clock=clock)
    presence.observe(orphan)
    clock.now += ORPHANED_AFTER_S - 1
    presence.observe(report)
    presence.observe(orphan)
    clock.now += ORPHANED_AFTER_S - 1
    assert not presence.orphaned()
    clock.now += 1
    assert presence.orphaned()


class Client:
    """A client that is orphaned when told."""

    def __init__(self):
        self.is_orphaned = False

    def orphaned(self) -> bool:
        return self.is_orphaned

    def name(self) -> str:
        return f"client {id(self)}"


def test_a_renewing_client_stays_the_same_until_orphaned_then_is_replaced_once_however_many_ask():
    made, retired = [], []

    def connect():
        made.append(Client())
        return made[-1]

    renewing = Renewing(connect, "test", retire=lambda client, name: retired.append(client))
    first = renewing.current()
    assert renewing.current() is first and renewing.name() == first.name(), "what it is asked goes to its client"
    first.is_orphaned = True
    answers = []
    askers = [threading.Thread(target=lambda: answers.append(renewing.current())) for _ in range(8)]
    for asker in askers:
        asker.start()
    for asker in askers:
        asker.join()
    assert retired == [first] and len(made) == 2, "the orphan was retired once, and one client made in its place"
    assert all(answer is made[1] for answer in answers)
