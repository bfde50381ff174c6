"""Producing records and learning their delivery reports, for every confluent-kafka producer of the services.

Two kinds of caller share it. The producer service's requests share one producer whose delivery reports a poll
thread of its own serves (produce_later): a full local queue refuses a record at once (the request answers 503), and
a caller gets a future of its own records' reports, which no thread waits on. The consumer service's sinks each own
a producer and serve its reports themselves: a full local queue is waited out, and either the producer is flushed,
which also sends at once what lingers (produce_and_wait), or the reports are served when the caller asks for them,
after other work (produce_for_later).
"""

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
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
    """The delivery reports of records produced together, known as one.

    Reports may come on any thread: a poll thread serving the producer, or the caller's own flush. `all_in` is done,
    with what `read` makes of every report, in order, once the last one came (with read's error if it fails).
    """

    def __init__(self, count: int, read: Callable[[Delivery], object] = lambda delivery: delivery):
        self._outcomes: list[Delivery | None] = [None] * count
        self._left = count
        self._lock = threading.Lock()
        self._read = read
        self.all_in: Future[list] = Future()
        if count == 0:
            self.all_in.set_result([])

    def on_delivery(self, index: int) -> Callable[[KafkaError | None, KafkaMessage], None]:
        """The delivery callback of record `index`."""
        return partial(self._report, index)

    def refuse(self, index: int, error: KafkaError) -> None:
        """Note a record the producer refused before sending it."""
        self._note(index, Delivery(error))

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
            complete = self._left == 0 and not self.all_in.done()
        if complete:  # outside the lock: the future's callbacks run here
            try:
                read = [self._read(each) for each in self._outcomes]
            except Exception as error:
                self.all_in.set_exception(error)
            else:
                self.all_in.set_result(read)


def produce_later(producer: Producer, topic: str, records: Sequence[Producible],
                  read: Callable[[Delivery], object] = lambda delivery: delivery) -> Future[list]:
    """Produce records to a producer another thread polls; the future of what `read` makes of their delivery
    reports, in order.

    A record the full local queue cannot take is refused at once. librdkafka reports every record within its
    message.timeout.ms, so the future is done by then.
    """
    deliveries = Deliveries(len(records), read)
    _produce(producer, topic, records, deliveries, wait_for_room=False)
    return deliveries.all_in


def produce_and_wait(producer: Producer, topic: str, records: Sequence[Producible],
                     timeout: float) -> list[Delivery | None]:
    """Produce records, serving the producer's reports here; each one's report in order, None if none came in time.

    A full queue is waited out while serving reports, and the producer is flushed for up to `timeout`.
    """
    deliveries = Deliveries(len(records))
    _produce(producer, topic, records, deliveries, wait_for_room=True)
    producer.flush(timeout)
    return deliveries.outcomes()


def produce_for_later(producer: Producer, topic: str,
                      records: Sequence[Producible]) -> Callable[[float], list[Delivery | None]]:
    """Produce records now; the call that serves the producer's reports until theirs are all in, for up to `timeout`,
    and returns each one's report in order, None if none came in time.

    A full queue is waited out while serving reports. Until the call, the reports wait in the producer (or are served
    by whoever else polls it): the caller does other work meanwhile.
    """
    deliveries = Deliveries(len(records))
    _produce(producer, topic, records, deliveries, wait_for_room=True)

    def reports(timeout: float) -> list[Delivery | None]:
        deadline = time.monotonic() + timeout
        while not deliveries.all_in.done() and (left := deadline - time.monotonic()) > 0:
            producer.poll(min(left, 0.1))  # returns as soon as it served a report
        return deliveries.outcomes()

    return reports


def _produce(producer: Producer, topic: str, records: Sequence[Producible], deliveries: Deliveries, *,
             wait_for_room: bool) -> None:
    """Hand each record to the producer, its report to `deliveries`; a full queue is polled out or refuses it."""
    for index, record in enumerate(records):
        while True:
            try:
                producer.produce(topic, key=record.key, value=record.value, headers=record.headers,
                                 on_delivery=deliveries.on_delivery(index))
            except BufferError:
                if wait_for_room:
                    producer.poll(0.1)
                    continue
                deliveries.refuse(index, KafkaError(KafkaError._QUEUE_FULL, QUEUE_FULL))
            except KafkaException as error:  # refused before sending, e.g. larger than message.max.bytes
                deliveries.refuse(index, error.args[0])
            break
