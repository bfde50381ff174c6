"""`RUN_KAFKA_BROKERS=3 make run`: a cluster of three Kafka nodes, topics kept three times, each node restarted when
it dies; any other count is refused with one line."""

import os
import random
import signal
import socket
import uuid

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource

from infra.process import wait_until
from tests.support.local_stack import LocalStackRun, running

from .test_make_run_existing_store import environ

NODES = 3


def spaced_ports(count: int) -> int:
    """A port from which the next 2 * `count` are all free (below the range the system hands out by itself)."""
    while True:
        first = random.randrange(20000, 30000 - 2 * count)
        if all(_bindable(port) for port in range(first, first + 2 * count)):
            return first


def _bindable(port: int) -> bool:
    """Whether a listener could bind 127.0.0.1:port now."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture(scope="module")
def cluster_run(tmp_path_factory):
    """A `RUN_KAFKA_BROKERS=3 make run` with one consumer, its nodes on ports 2 apart from a free range."""
    first = spaced_ports(NODES)
    yield from running(LocalStackRun(tmp_path_factory.mktemp("make-run-cluster"), RUN_KAFKA_BROKERS=str(NODES),
                                     RUN_KAFKA_PORT=str(first), RUN_KAFKA_CONTROLLER_PORT=str(first + 1),
                                     RUN_CLIENTS="clientB"))


def bootstrap(run) -> str:
    """The nodes' client addresses: RUN_KAFKA_PORT and every second port after it."""
    first = int(run.env["RUN_KAFKA_PORT"])
    return ",".join(f"127.0.0.1:{first + 2 * n}" for n in range(NODES))


def stored_ids(run) -> set[str]:
    """The ids of the messages stored for clientB, as GET /messages lists them."""
    return {message["messageId"] for message in run.api.get("/messages", to="clientB", limit=500).body}


def send_and_see_stored(run) -> None:
    """Send one message and wait until it is listed."""
    message_id = f"cluster-{uuid.uuid4().hex[:10]}"
    wait_until(lambda: run.api.send("clientB", "clientB", "over three nodes", messageId=message_id).status == 202, 30,
               what="a 202")
    wait_until(lambda: message_id in stored_ids(run), 60, what="the message in GET /messages")


def test_the_banner_names_the_cluster_and_its_bootstrap_list_which_every_service_gets(cluster_run):
    assert [line for line in cluster_run.lines()
            if line.startswith(f"kafka:   a cluster of 3, PLAINTEXT, bootstrap {bootstrap(cluster_run)} (started here")]
    pids = cluster_run.pids()
    assert {name for name in pids if name.startswith("Kafka")} == {"Kafka-1", "Kafka-2", "Kafka-3"}
    services = ("consumer-clientB", "producer", "operator")
    assert {name: environ(pids[name])["KAFKA_BOOTSTRAP_SERVERS"] for name in services} == \
        dict.fromkeys(services, bootstrap(cluster_run))


def test_messages_are_stored_through_topics_of_three_replicas_and_two_in_sync(cluster_run):
    send_and_see_stored(cluster_run)
    admin = AdminClient({"bootstrap.servers": bootstrap(cluster_run)})
    partitions = admin.list_topics("client-messages", timeout=10).topics["client-messages"].partitions
    assert {len(partition.replicas) for partition in partitions.values()} == {3}
    [config] = admin.describe_configs([ConfigResource("topic", "client-messages")]).values()
    assert config.result()["min.insync.replicas"].value == "2"


def test_a_killed_node_is_started_again_and_messages_go_on_being_stored(cluster_run):
    old = cluster_run.pids()["Kafka-2"]
    os.kill(old, signal.SIGKILL)
    expected = "Kafka-2 exited (killed by SIGKILL); restarting it in 1s"
    cluster_run.wait_for(lambda: expected in cluster_run.lines(), 30, "the line saying Kafka-2 is restarted")
    send_and_see_stored(cluster_run)
    cluster_run.wait_for(lambda: cluster_run.pids()["Kafka-2"] != old, 90, "Kafka-2 to run again")
    send_and_see_stored(cluster_run)


def test_sigterm_stops_every_node_and_everything_else(cluster_run):
    assert cluster_run.stop() == 0
    assert cluster_run.lines()[-1] == "all processes stopped"
    wait_until(lambda: not cluster_run.marked_processes(), 5, what="every process make run started to be gone")


@pytest.mark.parametrize("count", ["2", "0", "many"])
def test_a_broker_count_other_than_1_or_3_stops_make_run_with_one_line_and_exit_2(tmp_path, count):
    run = LocalStackRun(tmp_path, RUN_KAFKA_BROKERS=count)
    run.start()
    try:
        assert run.process.wait(60) == 2, run.output()
        [line] = run.output().splitlines()
        assert line == f"make run cannot go on: configuration error: RUN_KAFKA_BROKERS must be 1 or 3, got '{count}'"
        assert run.marked_processes() == []
    finally:
        run.close()
