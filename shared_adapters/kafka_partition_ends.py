"""A topic's partitions as a confluent-kafka client looks them up: how many, and where each ends (its high watermark)."""

import logging
import time
from collections.abc import Callable, Collection

from confluent_kafka import Consumer, KafkaException, TopicPartition

from shared_domain.plausibility import EndsLookup

log = logging.getLogger(__name__)


def partition_ends(consumer: Consumer, topic: str, timeout_s: float) -> EndsLookup:
    """Look ends up through `consumer`: one metadata request, then one request per partition that exists."""

    def look_up(partitions: Collection[int]) -> dict[int, int | None]:
        try:
            metadata = consumer.list_topics(topic, timeout=timeout_s).topics[topic]
        except (KafkaException, KeyError) as error:
            log.debug("partitions of %s not looked up: %s", topic, error)
            return {}
        if metadata.error is not None:
            log.debug("partitions of %s not looked up: %s", topic, metadata.error)
            return {}
        ends: dict[int, int | None] = {}
        for partition in partitions:
            if partition not in metadata.partitions:
                ends[partition] = None
                continue
            try:
                watermarks = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout_s)
            except KafkaException as error:
                log.debug("end of %s:%d not looked up: %s", topic, partition, error)
                continue
            if watermarks is not None:  # None: no answer in time
                ends[partition] = watermarks[1]
        return ends

    return look_up


def partition_count(client, topic: str, timeout: float) -> int | None:
    """How many partitions the topic has, asked through any client (consumer, producer, admin); None when not said in time."""
    try:
        metadata = client.list_topics(topic, timeout=timeout).topics.get(topic)
    except KafkaException:
        return None
    return None if metadata is None or metadata.error is not None else len(metadata.partitions)


class PartitionCount:
    """A topic's partition count, asked of Kafka at most every `refresh_s` seconds; the last known while Kafka is silent."""

    def __init__(self, look_up: Callable[[], int | None], refresh_s: float = 60.0, clock=time.monotonic):
        self._look_up, self._refresh, self._clock = look_up, refresh_s, clock
        self._count: int | None = None
        self._asked: float | None = None

    def __call__(self) -> int | None:
        """The count; None until Kafka has said it once."""
        if self._asked is None or self._count is None or self._clock() - self._asked >= self._refresh:
            self._asked = self._clock()
            self._count = self._look_up() or self._count
        return self._count
