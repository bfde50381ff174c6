"""A local KRaft cluster: several combined broker+controller nodes on loopback, each a process of its own.

Every node is a voter of one static controller quorum (`controller.quorum.voters`, node ids 1..n), and
every node's storage is formatted with the same cluster id. With three voters a quorum is two: when
one node dies, the active controller included, the other two elect an active controller among
themselves and the cluster serves on; topics keep 3 replicas and take writes while 2 are in sync.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from pathlib import Path

from infra.kafka import KafkaServer, UnsecuredStorage, random_cluster_id, replication_properties
from infra.kafka_security import PLAINTEXT, SASL_SSL, KafkaCredentials
from infra.process import make_private, write_private

# What the QuorumController logs when its node takes over; epochs only grow, so the highest is the current one.
ACTIVE_CONTROLLER = re.compile(rb"Becoming the active controller at epoch (\d+)")


class KafkaNode(KafkaServer):
    """One node of a KafkaCluster: a broker, and a voter of the cluster's controller quorum."""

    def __init__(self, cluster: KafkaCluster, node_id: int, port: int, controller_port: int) -> None:
        """Configure the node; nothing runs until start()."""
        super().__init__(port, controller_port, cluster.data_dir / f"node-{node_id}", cluster.security,
                         credentials_dir=cluster.data_dir / "security")
        self.name = f"Kafka-{node_id}"
        self.node_id = node_id
        self.cluster = cluster

    def start(self, timeout: float = 90.0) -> None:
        """Start the node and wait until it serves, unless too few others run to make a quorum with it."""
        self.launch()
        # Without a majority of the voters running no controller can be elected: it serves once the next one starts.
        if self.cluster.quorum_with(self):
            self.await_ready(timeout)

    def active_controller_epoch(self) -> int:
        """The last epoch in which this node became the active controller (0 if it never did)."""
        if not self.log_path.exists():
            return 0
        return max((int(epoch) for epoch in ACTIVE_CONTROLLER.findall(self.log_path.read_bytes())), default=0)

    def _prepare_credentials(self, formatted: bool) -> None:
        """Nothing to make: the cluster made the certificates and the password; refuse to go on without them."""
        self.cluster.check_password()

    def _format_arguments(self) -> list[str]:
        """StorageTool format options: the cluster's id; the voters come from controller.quorum.voters."""
        return ["-t", self.cluster.cluster_id()]

    def _quorum_properties(self) -> dict[str, str]:
        """This node's id, the cluster's static voter set and the replication its size allows."""
        return {"node.id": str(self.node_id), "controller.quorum.voters": self.cluster.voters,
                **replication_properties(len(self.cluster.nodes))}


class KafkaCluster:
    """Kafka nodes on loopback, one (port, controller port) pair each, with data and credentials under one dir."""

    def __init__(self, ports: Sequence[tuple[int, int]], data_dir: Path, security: str = PLAINTEXT) -> None:
        """Configure the nodes; nothing runs until start()."""
        self.data_dir = Path(data_dir).absolute()
        self.security = security
        self.credentials = KafkaCredentials(self.data_dir / "security") if security == SASL_SSL else None
        self.nodes = [KafkaNode(self, node_id, port, controller) for node_id, (port, controller) in enumerate(ports, 1)]

    @property
    def voters(self) -> str:
        """The static controller quorum: `id@host:port` of every node."""
        return ",".join(f"{node.node_id}@127.0.0.1:{node.controller_port}" for node in self.nodes)

    @property
    def bootstrap_servers(self) -> str:
        """Every node's client address, e.g. '127.0.0.1:9092,127.0.0.1:9094,127.0.0.1:9096'."""
        return ",".join(node.bootstrap_servers for node in self.nodes)

    @property
    def listener(self) -> str:
        """The client listener's name, which is also its security protocol."""
        return self.nodes[0].listener

    def client_env(self) -> dict[str, str]:
        """The KAFKA_* security variables a service needs besides KAFKA_BOOTSTRAP_SERVERS (none for plaintext)."""
        return self.credentials.client_env() if self.credentials else {}

    def client_config(self) -> dict[str, str]:
        """A librdkafka configuration that reaches the cluster: every address, and the credentials if any."""
        return {"bootstrap.servers": self.bootstrap_servers,
                **(self.credentials.client_properties() if self.credentials else {})}

    def node(self, node_id: int) -> KafkaNode:
        """The node with this id."""
        return next(node for node in self.nodes if node.node_id == node_id)

    def cluster_id(self) -> str:
        """The id every node's storage is formatted with, chosen once and kept with the data."""
        path = self.data_dir / "cluster.id"
        if not path.exists():
            write_private(path, random_cluster_id() + "\n")
        return path.read_text().strip()

    def quorum_with(self, node: KafkaNode) -> bool:
        """Whether `node` and the other running nodes are a majority of the voters."""
        running = 1 + sum(other.alive for other in self.nodes if other is not node)
        return running > len(self.nodes) // 2

    def active_controller(self) -> KafkaNode | None:
        """The node that last became the active controller, by the epochs in the nodes' logs (None before any did)."""
        latest = max(self.nodes, key=KafkaNode.active_controller_epoch)
        return latest if latest.active_controller_epoch() else None

    def check_password(self) -> None:
        """Raise UnsecuredStorage when the nodes' SCRAM user has no password file to go with it."""
        assert self.credentials is not None
        if not self.credentials.password_path.exists():
            raise UnsecuredStorage(f"the Kafka data in {self.data_dir} was formatted without the SCRAM user SASL_SSL "
                                   f"needs, or its {self.credentials.password_path} was removed; remove "
                                   f"{self.data_dir} to start afresh")

    def start(self, timeout: float = 120.0) -> None:
        """Start every node together (none serves before a quorum runs) and wait until each serves."""
        self._prepare()
        try:
            for node in self.nodes:
                node.launch()
            for node in self.nodes:
                node.await_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop every node at once: a node stopped after the others would find no quorum to shut down with."""
        stoppers = [threading.Thread(target=node.stop) for node in self.nodes]
        for stopper in stoppers:
            stopper.start()
        for stopper in stoppers:
            stopper.join()

    def _prepare(self) -> None:
        """Make the data dir, the cluster id and (secured) the certificates and the password the nodes share."""
        make_private(self.data_dir)
        self.cluster_id()
        if self.credentials is None:
            return
        formatted = any(node.formatted for node in self.nodes)
        if formatted:
            self.check_password()
        self.credentials.ensure_certificates()
        if not formatted:
            self.credentials.new_password()
