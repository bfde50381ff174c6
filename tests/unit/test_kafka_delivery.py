"""Producing and learning delivery reports: served by a poll thread of the producer's own, or by the caller."""

import threading

import pytest
from confluent_kafka import KafkaError, KafkaException

from shared_adapters.kafka_delivery import QUEUE_FULL, Record, produce_and_wait, produce_later

RECORDS = [Record(b"clientB", b"one", []), Record(b"clientB", b"two", []), Record(b"clientB", b"three", [])]


class Reported:
    """A delivered record as a delivery report carries it."""

    def __init__(self, offset):
        self._offset = offset

    def partition(self):
        return 0

    def offset(self):
        return self._offset


class FakeProducer:
    """Takes `room` records (then BufferError until polled), refuses values in `refused`, reports on poll or flush."""

    def __init__(self, room=100, refused=(), lost=()):
        self.room, self.refused, self.lost = room, refused, lost
        self.pending, self.offset, self.polls = [], 0, 0

    def produce(self, topic, key, value, headers, on_delivery):
        if value in self.refused:
            raise KafkaException(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE))
        if len(self.pending) >= self.room:
            raise BufferError()
        self.pending.append((value, on_delivery))

    def poll(self, timeout):
        self.polls += 1
        self._report()

    def flush(self, timeout):
        self._report()
        return 0

    def _report(self):
        for value, on_delivery in self.pending:
            if value not in self.lost:
                self.offset += 1
                on_delivery(None, Reported(self.offset))
        self.pending = []


def test_a_caller_serving_its_reports_waits_out_a_full_queue_and_gets_every_outcome():
    producer = FakeProducer(room=1, refused=(b"two",))
    outcomes = produce_and_wait(producer, "t", RECORDS, 1.0)
    assert producer.polls == 1
    assert outcomes[0].error is None and outcomes[0].record.offset() == 1
    assert outcomes[1].error.code() == KafkaError.MSG_SIZE_TOO_LARGE
    assert outcomes[2].error is None and outcomes[2].record.offset() == 2


def test_a_record_with_no_report_in_time_has_no_outcome():
    assert [outcome is None for outcome in produce_and_wait(FakeProducer(lost=(b"two",)), "t", RECORDS, 1.0)] == [
        False, True, False]


def test_with_a_poll_thread_a_full_queue_refuses_at_once_and_the_future_is_done_by_the_thread():
    producer = FakeProducer(room=2)
    outcomes = produce_later(producer, "t", RECORDS)
    assert not outcomes.done()  # two records wait for their reports, the third was refused
    poller = threading.Thread(target=producer.poll, args=(0,))
    poller.start()
    poller.join()
    reports = outcomes.result(timeout=0)
    assert [report.error for report in reports[:2]] == [None, None]
    assert reports[2].error.code() == KafkaError._QUEUE_FULL and reports[2].error.str() == QUEUE_FULL
    assert producer.polls == 1


def test_with_a_poll_thread_the_future_waits_for_every_report():
    producer = FakeProducer(lost=(b"two",))
    outcomes = produce_later(producer, "t", RECORDS)
    producer.poll(0)
    assert not outcomes.done()


def test_records_all_refused_make_a_done_future():
    reports = produce_later(FakeProducer(refused=(b"one",)), "t", RECORDS[:1]).result(timeout=0)
    assert reports[0].error.code() == KafkaError.MSG_SIZE_TOO_LARGE


def test_with_a_poll_thread_the_future_holds_what_is_read_of_each_report_or_the_readings_failure():
    producer = FakeProducer()
    read = produce_later(producer, "t", RECORDS, read=lambda report: report.record.offset())
    failing = produce_later(producer, "t", RECORDS[:1], read=lambda report: 1 / 0)
    producer.poll(0)
    assert read.result(timeout=0) == [1, 2, 3]
    with pytest.raises(ZeroDivisionError):  # a request is answered 500 rather than never
        failing.result(timeout=0)
