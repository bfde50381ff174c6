"""What the soak samples each minute: each process's memory, descriptors and threads, consumer lag, records stored."""

from __future__ import annotations

import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from shared_adapters.kafka_connection import KafkaConnection
from tests.support.metrics import value

LIVE_FEED_PREFIX = "live-"  # the producer workers' stored-event readers: groups that never commit


@dataclass(frozen=True)
class ProcessSample:
    """One process at one moment: its pid, resident memory, open descriptors and threads."""

    pid: int
    rss_mib: float
    fds: int
    threads: int


@dataclass(frozen=True)
class GroupPosition:
    """A consumer group's committed offsets and the ends of the same partitions, summed."""

    committed: int
    end: int

    @property
    def lag(self) -> int:
        """Records past the group's commits."""
        return self.end - self.committed


def processes(parts: dict[str, int]) -> dict[str, ProcessSample]:
    """Every live process of each part's process group: the leader under the part's name, the rest as name/1, name/2."""
    members: dict[int, list[int]] = {}
    for pid, group in _process_groups():
        members.setdefault(group, []).append(pid)
    found = {}
    for name, leader in parts.items():
        others = sorted(pid for pid in members.get(leader, []) if pid != leader)
        for key, pid in ((name, leader), *((f"{name}/{n}", pid) for n, pid in enumerate(others, 1))):
            sample = _sample(pid)
            if sample is not None:
                found[key] = sample
    return found


def _process_groups() -> list[tuple[int, int]]:
    """(pid, process group) of every process."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # ended meanwhile
            continue
        fields = text[text.rindex(")") + 2:].split()  # after "pid (comm) "
        if fields[0] != "Z":
            found.append((int(stat.parent.name), int(fields[2])))
    return found


def _sample(pid: int) -> ProcessSample | None:
    """Memory, descriptors and threads of one process (None once it is gone)."""
    try:
        status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None
    return ProcessSample(pid, int(status.get("VmRSS", "0 kB").split()[0]) / 1024, fds, int(status["Threads"]))


class ConsumerGroups:
    """The committed offsets of every consumer group on the stack's broker(s), beside the partitions' ends."""

    def __init__(self, connection: KafkaConnection):
        self._admin = AdminClient(connection.config())

    def positions(self, timeout: float = 10.0) -> dict[str, GroupPosition]:
        """Each group that has committed something: its commits and the ends of the partitions it committed on."""
        listed = self._admin.list_consumer_groups(request_timeout=timeout).result(timeout)
        commits = {}
        for group in sorted(listing.group_id for listing in listed.valid):
            if group.startswith(LIVE_FEED_PREFIX):
                continue
            request = [ConsumerGroupTopicPartitions(group)]
            answer = self._admin.list_consumer_group_offsets(request, request_timeout=timeout)[group].result(timeout)
            # A per-client consumer reads one partition: the others it never committed on are none of its lag.
            committed = [position for position in answer.topic_partitions or [] if position.offset >= 0]
            if committed:
                commits[group] = committed
        ends = self._ends({(p.topic, p.partition) for positions in commits.values() for p in positions}, timeout)
        return {group: GroupPosition(sum(p.offset for p in positions), sum(ends[(p.topic, p.partition)] for p in positions))
                for group, positions in commits.items()}

    def _ends(self, partitions: set[tuple[str, int]], timeout: float) -> dict[tuple[str, int], int]:
        """The end offset of each partition."""
        if not partitions:
            return {}
        asked = {TopicPartition(topic, number): OffsetSpec.latest() for topic, number in partitions}
        answers = self._admin.list_offsets(asked, request_timeout=timeout)
        return {(partition.topic, partition.partition): future.result(timeout).offset
                for partition, future in answers.items()}


class StoredCounter:
    """How many messages each consumer has stored, from its own metrics (a count in the local store reads it all)."""

    def __init__(self, metrics_ports: dict[str, int]):
        self._urls = {client: f"http://127.0.0.1:{port}/metrics" for client, port in metrics_ports.items()}

    def stored(self) -> dict[str, float | None]:
        """Each consumer's count of stored records since it started (None when its metrics did not answer)."""
        return {client: _stored_records(url) for client, url in self._urls.items()}


def _stored_records(url: str) -> float | None:
    """The records one consumer process counts as stored (None when it does not answer)."""
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            text = answer.read().decode()
    except OSError:
        return None
    return value(text, "consumer_records_total", outcome="stored")
