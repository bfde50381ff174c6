"""Producing records and waiting for their delivery reports, for every confluent-kafka producer of the services.

Two kinds of caller share it. The producer service's request threads share one producer whose delivery reports a
poll thread of its own serves: a full local queue refuses a record at once (the request answers 503) and a caller
waits for its own records' reports alone. The consumer service's sinks each own a producer and serve its reports
themselves: a full local queue is waited out, and the producer is flushed, which also sends at once what lingers.
"""

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Protocol

from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka import Message as KafkaMessage

QUEUE_FULL = "the local send queue is full"


class Producible(Protocol):
    """What is produced of a record."""

    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]


@dataclass(frozen=True)
class Record:
    """A record to produce: key, value and headers."""

    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]


@dataclass(frozen=True)
class Delivery:
    """One record's delivery report: None as `error` once the broker acknowledged it (`record` says where)."""

    error: KafkaError | None
    record: KafkaMessage | None = None


class Deliveries:
    """The delivery reports of records produced together, awaited as one.

    Reports may come on any thread: a poll thread serving the producer, or the caller's own flush.
    """

    def __init__(self, count: int):
        self._outcomes: list[Delivery | None] = [None] * count
        self._left = count
        self._lock = threading.Lock()
        self._all_in = threading.Event()
        if count == 0:
            self._all_in.set()

    def on_delivery(self, index: int) -> Callable[[KafkaError | None, KafkaMessage], None]:
        """The delivery callback of record `index`."""
        return partial(self._report, index)

    def refuse(self, index: int, error: KafkaError) -> None:
        """Note a record the producer refused before sending it."""
        self._note(index, Delivery(error))

    def wait(self, timeout: float) -> None:
        """Wait until every report is in, or for `timeout` at most."""
        self._all_in.wait(timeout)

    def outcomes(self) -> list[Delivery | None]:
        """Each record's delivery report, in order; None where none came yet."""
        with self._lock:
            return list(self._outcomes)

    def _report(self, index: int, error: KafkaError | None, record: KafkaMessage) -> None:
        self._note(index, Delivery(error, None if error is not None else record))

    def _note(self, index: int, outcome: Delivery) -> None:
        with self._lock:
            if self._outcomes[index] is None:
                self._left -= 1
            self._outcomes[index] = outcome
            if self._left == 0:
                self._all_in.set()


def produce_and_wait(producer: Producer, topic: str, records: Sequence[Producible], timeout: float, *,
                     polled_elsewhere: bool = False) -> list[Delivery | None]:
    """Produce records and wait up to `timeout` for their delivery reports; each one's, in order, None if none came.

    `polled_elsewhere`: another thread serves the producer's delivery reports, and other callers may share it; a
    record the full local queue cannot take is refused at once, and only these records' reports are waited for.
    Otherwise the caller serves them: a full queue is waited out while serving reports, and the producer flushed.
    """
    deliveries = Deliveries(len(records))
    for index, record in enumerate(records):
        while True:
            try:
                producer.produce(topic, key=record.key, value=record.value, headers=record.headers,
                                 on_delivery=deliveries.on_delivery(index))
            except BufferError:
                if not polled_elsewhere:
                    producer.poll(0.1)
                    continue
                deliveries.refuse(index, KafkaError(KafkaError._QUEUE_FULL, QUEUE_FULL))
            except KafkaException as error:  # refused before sending, e.g. larger than message.max.bytes
                deliveries.refuse(index, error.args[0])
            break
    if polled_elsewhere:
        deliveries.wait(timeout)
    else:
        producer.flush(timeout)
    return deliveries.outcomes()
