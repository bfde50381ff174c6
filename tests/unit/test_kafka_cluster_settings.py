"""RUN_KAFKA_BROKERS: one broker or a cluster of three, its ports and data, and what each node is configured with."""

import re
from pathlib import Path

import pytest

from infra.kafka_cluster import KafkaCluster, KafkaNode
from infra.run_settings import read_run_settings
from shared_domain.config import ConfigError


def properties(text: str) -> dict[str, str]:
    """server.properties text as a dict."""
    return dict(line.split("=", 1) for line in text.splitlines())


def test_one_broker_is_the_default_on_the_usual_ports_and_data():
    settings = read_run_settings({"RUN_DATA_DIR": "/data"})
    assert (settings.kafka_brokers, settings.kafka_ports, settings.kafka_data_dir) == (1, [(9092, 9093)], Path("/data/kafka"))


def test_three_brokers_take_every_other_port_and_data_of_their_own():
    settings = read_run_settings({"RUN_KAFKA_BROKERS": "3", "RUN_DATA_DIR": "/data"})
    assert settings.kafka_ports == [(9092, 9093), (9094, 9095), (9096, 9097)]
    assert settings.kafka_data_dir == Path("/data/kafka-cluster-3")
    secured = read_run_settings({"RUN_KAFKA_BROKERS": "3", "RUN_KAFKA_SECURITY": "sasl_ssl", "RUN_DATA_DIR": "/data"})
    assert secured.kafka_data_dir == Path("/data/kafka-sasl_ssl-cluster-3")


@pytest.mark.parametrize("env, says", [
    ({"RUN_KAFKA_BROKERS": "2"}, "RUN_KAFKA_BROKERS must be 1 or 3, got '2'"),
    ({"RUN_KAFKA_BROKERS": "three"}, "RUN_KAFKA_BROKERS must be 1 or 3, got 'three'"),
    ({"RUN_KAFKA_BROKERS": "3", "KAFKA_BOOTSTRAP_SERVERS": "broker1:9092"},
     "RUN_KAFKA_BROKERS sizes the Kafka make run starts, but KAFKA_BOOTSTRAP_SERVERS names one it does not start"),
    ({"RUN_KAFKA_BROKERS": "3", "RUN_KAFKA_CONTROLLER_PORT": "9094"},
     "RUN_KAFKA_CONTROLLER_PORT collides with a Kafka client port"),
    ({"RUN_KAFKA_BROKERS": "3", "RUN_KAFKA_PORT": "65533"}, "RUN_KAFKA_PORT (or RUN_KAFKA_CONTROLLER_PORT) leaves no room"),
])
def test_a_broker_count_or_ports_it_cannot_have_are_refused_naming_the_variable(env, says):
    with pytest.raises(ConfigError, match=f"^configuration error: {re.escape(says)}"):
        read_run_settings(env)


def test_every_node_is_a_voter_of_one_static_quorum_formatted_with_one_cluster_id(tmp_path):
    cluster = KafkaCluster([(9092, 9093), (9094, 9095), (9096, 9097)], tmp_path)
    voters = "1@127.0.0.1:9093,2@127.0.0.1:9095,3@127.0.0.1:9097"
    for node in cluster.nodes:
        props = properties(node._properties())
        assert (props["node.id"], props["controller.quorum.voters"]) == (str(node.node_id), voters)
        assert "controller.quorum.bootstrap.servers" not in props
        assert props["listeners"] == f"PLAINTEXT://127.0.0.1:{node.port},CONTROLLER://127.0.0.1:{node.controller_port}"
        assert (props["default.replication.factor"], props["min.insync.replicas"]) == ("3", "2")
        assert (props["offsets.topic.replication.factor"], props["transaction.state.log.min.isr"]) == ("3", "2")
    assert len({tuple(node._format_arguments()) for node in cluster.nodes}) == 1
    assert "--standalone" not in cluster.nodes[0]._format_arguments()
    assert cluster.bootstrap_servers == "127.0.0.1:9092,127.0.0.1:9094,127.0.0.1:9096"


def test_a_node_waits_to_serve_only_when_it_makes_a_quorum_with_the_running_others(tmp_path, monkeypatch):
    cluster = KafkaCluster([(1, 2), (3, 4), (5, 6)], tmp_path)
    first, second, _third = cluster.nodes
    running = {second}
    monkeypatch.setattr(KafkaNode, "alive", property(lambda node: node in running))
    assert cluster.quorum_with(first)
    running.clear()
    assert not cluster.quorum_with(first)


def test_the_active_controller_is_the_node_that_logged_the_latest_epoch(tmp_path):
    cluster = KafkaCluster([(1, 2), (3, 4), (5, 6)], tmp_path)
    assert cluster.active_controller() is None
    logs = {1: [1, 4], 2: [2], 3: []}
    for node in cluster.nodes:
        node.data_dir.mkdir(parents=True)
        node.log_path.write_text("".join(f"[QuorumController id={node.node_id}] Becoming the active controller at epoch "
                                         f"{epoch}, next write offset 7.\n" for epoch in logs[node.node_id]))
    assert cluster.active_controller().node_id == 1
