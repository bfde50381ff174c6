"""Session fixtures: the real Kafka and FerretDB the suite starts (or the ones the environment names)."""

import os
import uuid
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

from infra.ferretdb import FerretDBServer
from infra.kafka import KafkaServer
from infra.kafka_cluster import KafkaCluster
from infra.kafka_security import PLAINTEXT, SASL_SSL
from infra.process import free_ports
from tests.support.ledgers import LEDGERS
from tests.support.stack import Stack, build_stack


@dataclass
class Endpoint:
    """A server the tests talk to, by address."""

    address: str


@contextmanager
def running(server):
    """Start a server, hand it over, and stop it afterwards."""
    server.start()
    try:
        yield server
    finally:
        server.stop()


def new_kafka(tmp_path_factory, security: str = PLAINTEXT) -> KafkaServer:
    """A single-node KRaft broker on free ports."""
    return KafkaServer(*free_ports(2), tmp_path_factory.mktemp("kafka"), security)


def new_kafka_cluster(tmp_path_factory, nodes: int = 3) -> KafkaCluster:
    """A KRaft cluster of `nodes` combined broker+controller nodes on free ports."""
    ports = free_ports(2 * nodes)
    return KafkaCluster(list(zip(ports[::2], ports[1::2])), tmp_path_factory.mktemp("kafka-cluster"))


def new_store(tmp_path_factory) -> FerretDBServer:
    """A FerretDB on a free port."""
    return FerretDBServer(free_ports(1)[0], tmp_path_factory.mktemp("ferretdb"))


def named_or_started(variable: str, new_server, address_of):
    """Yield the endpoint an environment variable names, or one of a server started for the session."""
    if os.environ.get(variable):
        yield Endpoint(os.environ[variable])
        return
    with running(new_server()) as server:
        yield Endpoint(address_of(server))


@pytest.fixture(scope="session")
def kafka(tmp_path_factory):
    """A real Kafka broker: TEST_KAFKA_BOOTSTRAP_SERVERS, or one the suite starts."""
    yield from named_or_started("TEST_KAFKA_BOOTSTRAP_SERVERS", lambda: new_kafka(tmp_path_factory),
                                lambda server: server.bootstrap_servers)


@pytest.fixture(scope="session")
def mongo(tmp_path_factory):
    """A real MongoDB-protocol server: TEST_MONGODB_URI, or a FerretDB the suite starts."""
    yield from named_or_started("TEST_MONGODB_URI", lambda: new_store(tmp_path_factory), lambda server: server.uri)


@pytest.fixture(scope="module")
def killable_store(tmp_path_factory):
    """A FerretDB of the test module's own, so a test may stop or kill it without disturbing others."""
    with running(new_store(tmp_path_factory)) as server:
        yield server


@pytest.fixture(scope="module")
def killable_kafka(tmp_path_factory):
    """A broker of the test module's own, so a test may stop or kill it without disturbing others."""
    with running(new_kafka(tmp_path_factory)) as server:
        yield server


@pytest.fixture(scope="module")
def kafka_cluster(tmp_path_factory):
    """Three Kafka nodes of the test module's own, each a broker and a controller voter; a test may stop or kill any."""
    with running(new_kafka_cluster(tmp_path_factory)) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def secured_kafka(tmp_path_factory):
    """A broker of the test module's own that serves SASL_SSL only (SCRAM-SHA-512, a CA of its own)."""
    with running(new_kafka(tmp_path_factory, SASL_SSL)) as server:
        yield server


@pytest.fixture
def unique():
    """A short unique suffix, so tests share servers without sharing data."""
    return uuid.uuid4().hex[:10]


@pytest.fixture(scope="module")
def stack_factory(kafka, mongo, tmp_path_factory):
    """Build running stacks (stopped at module end): consumers for the given clients plus a producer."""
    stacks: list[Stack] = []

    def build(clients=("clientB",), mongo_uri: str | None = None, kafka_address: str | None = None, **overrides):
        stack = build_stack(kafka_address or kafka.address, mongo_uri or mongo.address, clients,
                            tmp_path_factory.mktemp("stack"), **overrides)
        stacks.append(stack)
        return stack

    yield build
    for stack in stacks:
        for process in stack.processes:
            process.stop()


def pytest_terminal_summary(terminalreporter):
    """Print every scenario's ledger line, and how many real answers were checked against the API documents."""
    from tests.support.contract import CHECKED

    if CHECKED:
        LEDGERS.append(f"ledger[API documents]: {sum(CHECKED.values())} answers from the running services matched "
                       f"their OpenAPI document, over {len(CHECKED)} (method, path, status) combinations")
    if LEDGERS:
        terminalreporter.section("ledgers")
        for line in LEDGERS:
            terminalreporter.write_line(line)
