"""Session fixtures: the real Kafka and FerretDB the suite starts (or the ones the environment names)."""

import os
import uuid
from dataclasses import dataclass

import pytest

from infra.ferretdb import FerretDBServer
from infra.kafka import KafkaServer
from infra.process import free_ports
from tests.support.stack import Stack, build_stack


@dataclass
class Endpoint:
    """A server the tests talk to; `server` is set when the suite owns it and may stop it."""

    address: str
    server: object | None = None


@pytest.fixture(scope="session")
def kafka(tmp_path_factory):
    """A real Kafka broker: TEST_KAFKA_BOOTSTRAP_SERVERS, or a single KRaft node on free ports."""
    if os.environ.get("TEST_KAFKA_BOOTSTRAP_SERVERS"):
        yield Endpoint(os.environ["TEST_KAFKA_BOOTSTRAP_SERVERS"])
        return
    port, controller_port = free_ports(2)
    server = KafkaServer(port, controller_port, tmp_path_factory.mktemp("kafka"))
    server.start()
    try:
        yield Endpoint(server.bootstrap_servers, server)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def mongo(tmp_path_factory):
    """A real MongoDB-protocol server: TEST_MONGODB_URI, or FerretDB on a free port."""
    if os.environ.get("TEST_MONGODB_URI"):
        yield Endpoint(os.environ["TEST_MONGODB_URI"])
        return
    server = FerretDBServer(free_ports(1)[0], tmp_path_factory.mktemp("ferretdb"))
    server.start()
    try:
        yield Endpoint(server.uri, server)
    finally:
        server.stop()


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
