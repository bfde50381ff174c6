"""Break a three-node Kafka cluster while messages flow: the busiest partition's leader killed, a broker stopped for a
minute, the active controller killed. A 202 means the in-sync replicas have the message, so none may be lost or doubled.

Each scenario also records what clients noticed: the sends refused (503) and over how long, the longest pause in
storing (between consecutive storedAt of its messages, read from the store) and in a live stream of the recipient,
which misses none of the accepted messages unless it was told to reload.
"""

import http.client
import os
import threading
import time

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource

from infra.kafka_cluster import KafkaCluster, KafkaNode
from infra.process import wait_until
from shared_domain.partitioning import partition_of
from tests.support.ledgers import LEDGERS
from tests.support.sse import SseStream
from tests.support.stack import Stack, build_stack

from .ledger import settle
from .load import MESSAGES, Load

RECIPIENT = "clientB"
# How long a broker stays away in the outage scenario; FAULT_OUTAGE_S shortens it where wall time matters.
OUTAGE_S = float(os.environ.get("FAULT_OUTAGE_S", "60"))


@pytest.fixture(scope="module")
def stack(kafka_cluster, mongo, tmp_path_factory):
    """Producer, operator server and a clientB consumer whose every Kafka client has the cluster's bootstrap list."""
    stack = build_stack(kafka_cluster.bootstrap_servers, mongo.address, (RECIPIENT,), tmp_path_factory.mktemp("stack"))
    yield stack
    for process in stack.processes:
        process.stop()


@pytest.fixture(autouse=True)
def whole(stack, kafka_cluster):
    """Every node running and every replica of the stack's topics in sync before a scenario (whatever the last did)."""
    for node in kafka_cluster.nodes:
        if not node.alive:
            node.start()
    wait_until(lambda: in_sync(stack, kafka_cluster), timeout=120, what="every replica back in sync")


class StreamWatch(threading.Thread):
    """The recipient's live stream, open through a load: when each message first arrived on it.

    Like a client, it resumes from its last position when the stream ends (an overflow after a burst, say), tries
    again half a second after a refusal (a 503 while no broker leads the stored events), and when told it missed
    too much to resume (409) reloads: opens a new stream from now.
    """

    def __init__(self, stack: Stack):
        super().__init__(daemon=True)
        self.stack = stack
        self.arrivals: dict[str, float] = {}
        self.reopened = self.reloaded = 0
        self.position: str | None = None
        self.stopping = threading.Event()
        self.stream = self._open()
        assert self.stream is not None, "the stream opens before the load"

    def run(self) -> None:
        """Note when each chat message arrives, reopening the stream whenever it ends."""
        while not self.stopping.is_set():
            if self.stream is None:
                self.stream = self._open()
                if self.stream is None:
                    self.stopping.wait(0.5)
                continue
            try:
                # A read that times out leaves the connection unusable: wait longer than any pause, and let stop()
                # end the wait by hanging up (the read then fails on a closed connection).
                event = self.stream.next_event(timeout=120)
            except (TimeoutError, OSError, http.client.HTTPException, ValueError, AttributeError):
                event = None
            if event is None:
                self.stream.close()
                self.stream = None
                self.reopened += not self.stopping.is_set()
                continue
            self.position = self.stream.last_id or self.position
            if event.kind == "chat-message":
                self.arrivals.setdefault(event.data["messageId"], time.monotonic())

    def stop(self) -> None:
        """Hang up."""
        self.stopping.set()
        stream = self.stream
        if stream is not None:
            stream.close()
        self.join(10)
        if self.stream is not None:
            self.stream.close()

    def longest_pause(self, prefix: str) -> float:
        """The longest time between two consecutive arrivals of messages whose ids start with `prefix`."""
        return longest_gap(sorted(at for message_id, at in self.arrivals.items() if message_id.startswith(prefix)))

    def _open(self) -> SseStream | None:
        """GET /stream as the recipient, from the last position if any; None when refused or unanswered."""
        try:
            stream = SseStream(self.stack.api.base_url, self.stack.api.tokens[RECIPIENT], self.position)
        except (OSError, http.client.HTTPException):
            return None
        if stream.status != 200:
            if stream.status == 409:
                self.position, self.reloaded = None, self.reloaded + 1
            stream.close()
            return None
        return stream


def longest_gap(times: list[float]) -> float:
    """The longest interval between consecutive sorted times (0 for fewer than two)."""
    return max((later - earlier for earlier, later in zip(times, times[1:])), default=0.0)


def in_sync(stack: Stack, cluster: KafkaCluster) -> bool:
    """Whether every node runs and every partition of the stack's topics has all its replicas in sync."""
    if not all(node.alive for node in cluster.nodes):
        return False
    topics = AdminClient({**cluster.client_config(), "log_level": 0}).list_topics(timeout=5).topics
    names = [*stack.topics, stack.env["STORED_EVENTS_TOPIC"]]
    return all(len(partition.isrs) == len(cluster.nodes)
               for name in names for partition in topics[name].partitions.values())


def busiest_partition_leader(stack: Stack, cluster: KafkaCluster) -> tuple[int, KafkaNode]:
    """The partition the recipient's messages go to, and the node leading it."""
    topic = stack.topics[0]
    partitions = AdminClient(cluster.client_config()).list_topics(topic, timeout=10).topics[topic].partitions
    partition = partition_of(RECIPIENT.encode(), len(partitions))
    return partition, cluster.node(partitions[partition].leader)


def stored_at(stack: Stack, prefix: str) -> list[float]:
    """When each of the load's messages was stored (sorted), read from the store."""
    from pymongo import MongoClient

    with MongoClient(stack.env["MONGODB_URI"], serverSelectionTimeoutMS=5000) as client:
        messages = client[stack.env["MONGODB_DATABASE"]].messages
        documents = messages.find({"to": RECIPIENT}, {"messageId": 1, "storedAt": 1})
        return sorted(doc["storedAt"].timestamp() for doc in documents if doc["messageId"].startswith(f"{prefix}-"))


def start_watched(stack: Stack, prefix: str, **load) -> tuple[Load, StreamWatch]:
    """Open the recipient's stream, then start the load."""
    watch = StreamWatch(stack)
    watch.start()
    return Load(stack.api, prefix, recipient=RECIPIENT, **load).start(), watch


def finish(scenario: str, what: str, stack: Stack, cluster: KafkaCluster, load: Load,
           watch: StreamWatch) -> None:
    """Check the ledger; print what clients noticed: refused sends, and pauses in storing and on the live stream."""
    load.wait()
    assert {outcome.status for outcome in load.outcomes.values()} <= {202, 503}
    try:
        settle(scenario, stack, load, all_stored=True)
        # The stream has the recipient's messages in offset order: one sent once the cluster is whole again comes
        # after everything of the load that the stream will ever show.
        wait_until(lambda: in_sync(stack, cluster), timeout=120, what="every replica back in sync")
        marker = f"marker-{load.prefix}"
        wait_until(lambda: stack.api.send("clientA", RECIPIENT, "marker", messageId=marker).status == 202, timeout=30,
                   what="the marker accepted")
        wait_until(lambda: marker in watch.arrivals, timeout=60, what="the marker on the live stream")
    finally:
        watch.stop()
    refused = sorted(outcome.at for outcome in load.outcomes.values() if outcome.status == 503)
    span = refused[-1] - refused[0] if refused else 0.0
    accepted, prefix = load.ids_with(202), f"{load.prefix}-"
    LEDGERS.append(f"ledger[{scenario}, pauses]: {what}; refused (503) {len(refused)} of {load.total} over {span:.1f}s; "
                   f"longest pause storing {longest_gap(stored_at(stack, load.prefix)):.1f}s; live stream: "
                   f"longest pause {watch.longest_pause(prefix):.1f}s, reopened {watch.reopened}x, "
                   f"reloaded {watch.reloaded}x, {len(accepted & set(watch.arrivals))} of {len(accepted)} accepted arrived")
    if not watch.reloaded:  # a stream that never had to reload misses nothing, failover or not
        assert accepted <= set(watch.arrivals), f"{len(accepted - set(watch.arrivals))} accepted never arrived live"


def test_the_stacks_topics_keep_three_replicas_and_take_writes_with_two_in_sync(stack, kafka_cluster):
    admin = AdminClient(kafka_cluster.client_config())
    names = [*stack.topics, stack.env["STORED_EVENTS_TOPIC"]]
    wait_until(lambda: "__consumer_offsets" in admin.list_topics(timeout=5).topics, timeout=60,
               what="the consumer's group offsets topic")
    topics = admin.list_topics(timeout=10).topics
    assert {name: {len(p.replicas) for p in topics[name].partitions.values()}
            for name in [*names, "__consumer_offsets"]} == dict.fromkeys([*names, "__consumer_offsets"], {3})
    configs = admin.describe_configs([ConfigResource("topic", name) for name in names])
    assert {resource.name: future.result()["min.insync.replicas"].value for resource, future in configs.items()} == \
        dict.fromkeys(names, "2")


def test_the_busiest_partitions_leader_killed_mid_load_and_restarted_loses_and_doubles_nothing(stack, kafka_cluster):
    partition, leader = busiest_partition_leader(stack, kafka_cluster)
    load, watch = start_watched(stack, "cluster-leader-kill")
    wait_until(lambda: load.done >= load.total * 0.3, timeout=60, what="30% of the sends answered")
    leader.kill()
    killed = time.monotonic()
    leader.start()
    back = time.monotonic() - killed
    finish("cluster: partition leader SIGKILL", f"node {leader.node_id} (leader of partition {partition}) killed, "
           f"serving again after {back:.1f}s", stack, kafka_cluster, load, watch)


def test_a_broker_stopped_for_a_minute_and_started_again_loses_and_doubles_nothing(stack, kafka_cluster):
    partition, leader = busiest_partition_leader(stack, kafka_cluster)
    # Sends go on through the whole outage and the return.
    load, watch = start_watched(stack, "cluster-outage", rate=MESSAGES / (OUTAGE_S + 20))
    wait_until(lambda: load.done >= load.total * 0.1, timeout=60, what="10% of the sends answered")
    leader.stop()
    stopped = time.monotonic()
    time.sleep(OUTAGE_S)
    away = [outcome for outcome in list(load.outcomes.values()) if outcome.at > stopped]
    assert any(outcome.status == 202 for outcome in away), "no send was accepted while the broker was away"
    leader.start()
    finish("cluster: broker SIGTERM for a minute", f"node {leader.node_id} (leader of partition {partition}) stopped "
           f"for {OUTAGE_S:g}s, {sum(o.status == 202 for o in away)} of {len(away)} sends meanwhile accepted",
           stack, kafka_cluster, load, watch)


def test_the_active_controller_killed_mid_load_and_started_again_loses_and_doubles_nothing(stack, kafka_cluster):
    controller = kafka_cluster.active_controller()
    assert controller is not None, "no node logged becoming the active controller"
    epoch = controller.active_controller_epoch()
    partition, leader = busiest_partition_leader(stack, kafka_cluster)
    load, watch = start_watched(stack, "cluster-controller-kill")
    wait_until(lambda: load.done >= load.total * 0.3, timeout=60, what="30% of the sends answered")
    controller.kill()
    killed = time.monotonic()
    wait_until(lambda: kafka_cluster.active_controller().active_controller_epoch() > epoch, timeout=60, interval=0.1,
               what="another node to become the active controller")
    successor, elected = kafka_cluster.active_controller(), time.monotonic() - killed
    controller.start()
    also = f", also leader of partition {partition}" if leader is controller else ""
    finish("cluster: active controller SIGKILL", f"node {controller.node_id} (active controller{also}) killed, node "
           f"{successor.node_id} active after {elected:.1f}s", stack, kafka_cluster, load, watch)
