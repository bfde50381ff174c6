"""The consumer's metrics, served on its health port (CONSUMER_HEALTH_PORT) at /metrics."""

import re
import threading
from collections.abc import Callable

from confluent_kafka import Consumer, TopicPartition
from prometheus_client import CONTENT_TYPE_LATEST

from shared_adapters.metrics import Counter, Gauge, Histogram, metrics_text

from ..application.handle_batch import BatchOutcome
from ..application.records import IncomingRecord

RECORDS = Counter("consumer_records_total", "Records read, by loop and what became of them "
                  "(stored, skipped, dead_lettered; projected for the dead-letter projector).", ["consumer", "outcome"])
DEAD_LETTERS = Counter("consumer_dead_letters_total", "Records dead-lettered, by error type.",
                       ["consumer", "error_type"])
STORE_RETRIES = Counter("consumer_store_retries_total", "Store writes tried again after a transient error.",
                        ["consumer"])
REWOUND = Counter("consumer_batches_rewound_total", "Batches read again because a dependency did not answer.",
                  ["consumer", "dependency"])
BATCH_RECORDS = Histogram("consumer_batch_records", "Records per batch.", ["consumer"],
                          buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000))
BATCH_SECONDS = Histogram("consumer_batch_seconds", "Time to write a batch: store, stored events, dead letters.",
                          ["consumer"],
                          buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
LAG = Gauge("consumer_lag_records", "Records between the last committed batch and the end of each partition "
            "(the projector's too).", ["consumer", "topic", "partition"])
UNKNOWN_FIELDS = Counter("consumer_unknown_envelope_fields_total", "Envelopes read with a field this consumer does "
                         "not know (a newer producer's; ignored, not stored), by field name: the first 20 names that "
                         "are safe as labels, then 'other'.", ["consumer", "field"])
DEPENDENCY_UP = Gauge("dependency_up", "1 when a dependency answers, 0 when not (asked at each scrape).",
                      ["dependency"])


# Field names come from whoever writes the topic: only short plain names become label values.
_SAFE_FIELD_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class FieldLabels:
    """Label values for field names: the name itself for the first `limit` safe names seen, then 'other'."""

    OTHER = "other"

    def __init__(self, limit: int = 20):
        self.limit = limit
        self.names: set[str] = set()
        self.lock = threading.Lock()

    def __call__(self, name: str) -> str:
        """The label value for one field name."""
        if name in self.names:
            return name
        with self.lock:
            if _SAFE_FIELD_NAME.fullmatch(name) and len(self.names) < self.limit:
                self.names.add(name)
                return name
        return self.OTHER


field_label = FieldLabels()


def record_batch(consumer: str, records: list[IncomingRecord], outcome: object, seconds: float) -> None:
    """Count a handled batch: what became of its records, its retries, size and duration."""
    BATCH_RECORDS.labels(consumer).observe(len(records))
    BATCH_SECONDS.labels(consumer).observe(seconds)
    if isinstance(outcome, BatchOutcome):
        for name, count in (("stored", outcome.stored), ("skipped", outcome.skipped),
                            ("dead_lettered", outcome.dead_lettered)):
            if count:
                RECORDS.labels(consumer, name).inc(count)
        for error_type, count in outcome.dead_letter_types.items():
            DEAD_LETTERS.labels(consumer, error_type).inc(count)
        if outcome.store_retries:
            STORE_RETRIES.labels(consumer).inc(outcome.store_retries)
        for name, count in outcome.unknown_fields.items():
            UNKNOWN_FIELDS.labels(consumer, field_label(name)).inc(count)
    else:
        RECORDS.labels(consumer, "projected").inc(len(records))


def record_lag(consumer: str, kafka: Consumer, records: list[IncomingRecord]) -> None:
    """Set each partition's lag after a committed batch, from the high watermark the last fetch brought."""
    last = {}
    for record in records:
        last[(record.topic, record.partition)] = max(record.offset, last.get((record.topic, record.partition), -1))
    for (topic, partition), offset in last.items():
        _low, high = kafka.get_watermark_offsets(TopicPartition(topic, partition), cached=True)
        if high >= 0:
            LAG.labels(consumer, topic, str(partition)).set(max(0, high - offset - 1))


def metrics_answer(checks: dict[str, Callable[[], bool]]) -> tuple[bytes, str]:
    """The metrics text (dependencies asked now) and its content type."""
    for name, check in checks.items():
        DEPENDENCY_UP.labels(name).set(1 if check() else 0)
    return metrics_text(), CONTENT_TYPE_LATEST
