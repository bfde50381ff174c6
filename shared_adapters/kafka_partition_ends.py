"""A topic's partitions as a confluent-kafka client looks them up: how many, and where each ends (its high watermark)."""

import logging
from collections.abc import Collection

from confluent_kafka import OFFSET_END, Consumer, KafkaException, TopicPartition

from shared_domain.plausibility import EndsLookup

from .kafka_connection import KafkaConnection
from .kafka_orphans import WatchedConsumer

log = logging.getLogger(__name__)


def lookup_client(kafka: KafkaConnection, client_name: str, group_id: str) -> WatchedConsumer:
    """A client that joins no group and reads nothing, for look-ups made beside the group consumer of `group_id`.

    A group consumer's own thread may be inside a rebalance callback waiting for the very batch whose
    positions are being looked up: the look-up must not need that consumer. Its owner polls it now and
    then (poll(0)), which is what hands on the log lines librdkafka queues for it.
    """
    # A consumer must name a group. It names the one it stands beside, which the same ACLs allow, and never joins
    # it: it neither subscribes nor commits.
    return WatchedConsumer(kafka.config(**{"group.id": group_id, "client.id": client_name, "enable.auto.commit": False}))


def partition_ends(consumer: Consumer, topic: str, timeout_s: float) -> EndsLookup:
    """Look ends up through `consumer`: one request for every partition asked about (per leader), its end offset.

    Which partitions exist is asked once, and again only when asked about one not known to exist: a topic's
    partitions are only ever added, and a live feed looks ends up at every event, so a metadata request each time
    would double what each look-up waits for.
    """
    existing: set[int] = set()

    def look_up(partitions: Collection[int]) -> dict[int, int | None]:
        if not existing.issuperset(partitions):
            try:
                metadata = consumer.list_topics(topic, timeout=timeout_s).topics[topic]
            except (KafkaException, KeyError) as error:
                log.debug("partitions of %s not looked up: %s", topic, error)
                return {}
            if metadata.error is not None:
                log.debug("partitions of %s not looked up: %s", topic, metadata.error)
                return {}
            existing.update(metadata.partitions)
        ends: dict[int, int | None] = {partition: None for partition in partitions if partition not in existing}
        # offsets_for_times answers OFFSET_END (ListOffsets' 'latest') with the partition's end.
        asked = [TopicPartition(topic, partition, OFFSET_END) for partition in partitions if partition in existing]
        try:
            answered = consumer.offsets_for_times(asked, timeout=timeout_s) if asked else []
        except KafkaException as error:
            log.debug("ends of %s not looked up: %s", topic, error)
            return ends
        for position in answered:
            if position.error is not None or position.offset < 0:
                log.debug("end of %s:%d not looked up: %s", topic, position.partition, position.error)
            else:
                ends[position.partition] = position.offset
        return ends

    return look_up


def partition_count(client, topic: str, timeout: float) -> int | None:
    """How many partitions the topic has, asked through any client (consumer, producer, admin); None when not said in time."""
    try:
        metadata = client.list_topics(topic, timeout=timeout).topics.get(topic)
    except KafkaException:
        return None
    return None if metadata is None or metadata.error is not None else len(metadata.partitions)
