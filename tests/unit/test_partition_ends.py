"""Partition ends looked up through a client: one request for the ends asked together; which partitions exist is
asked again only for one not known."""

from types import SimpleNamespace

from confluent_kafka import OFFSET_END, TopicPartition

from shared_adapters.kafka_partition_ends import partition_ends


class Cluster:
    """A client of a topic whose partitions and ends the test sets, counting the requests it is sent."""

    def __init__(self, ends: dict[int, int]):
        self.ends, self.metadata_requests, self.end_requests = ends, 0, 0

    def list_topics(self, topic, timeout):
        self.metadata_requests += 1
        partitions = {number: None for number in self.ends}
        return SimpleNamespace(topics={topic: SimpleNamespace(error=None, partitions=partitions)})

    def offsets_for_times(self, partitions, timeout):
        self.end_requests += 1
        assert all(asked.offset == OFFSET_END for asked in partitions)
        return [TopicPartition(asked.topic, asked.partition, self.ends[asked.partition]) for asked in partitions]


def test_the_ends_asked_together_cost_one_request_and_which_partitions_exist_is_asked_once_until_a_new_one():
    cluster = Cluster({0: 5, 1: 7})
    look_up = partition_ends(cluster, "t", timeout_s=1)
    assert look_up({0, 1}) == {0: 5, 1: 7}
    cluster.ends[0] = 6
    assert look_up({0}) == {0: 6} and look_up({1}) == {1: 7}
    assert cluster.metadata_requests == 1 and cluster.end_requests == 3
    assert look_up({2}) == {2: None}, "a partition that does not exist has no end"
    cluster.ends[2] = 1  # the topic was given a partition
    assert look_up({2}) == {2: 1}
    assert cluster.metadata_requests == 3
