"""A producer whose record was not delivered is replaced before the next send; one refused for its size is not."""

from confluent_kafka import KafkaError

from consumer_service.application.records import OutgoingRecord
from consumer_service.infrastructure.kafka_io import ReliableProducer


class StuckThenWorking:
    """A librdkafka-like producer that reports each record with the error it was made with (None: delivered)."""

    def __init__(self, error: KafkaError | None):
        self.error, self.purged = error, False

    def produce(self, topic, key, value, headers, on_delivery):
        self._pending = getattr(self, "_pending", []) + [on_delivery]

    def flush(self, timeout):
        for on_delivery in getattr(self, "_pending", []):
            on_delivery(self.error, None)
        self._pending = []
        return 0

    def purge(self):
        self.purged = True


RECORD = OutgoingRecord(key=b"clientB", value=b"{}", headers=[])


def producer_making(*errors):
    """A ReliableProducer whose successive clients fail with `errors` in turn; the list of clients made."""
    made = []

    def make():
        made.append(StuckThenWorking(errors[len(made)]))
        return made[-1]
    return ReliableProducer(make), made


def test_a_timed_out_record_makes_the_next_send_use_a_new_client_that_delivers():
    producer, made = producer_making(KafkaError(KafkaError._MSG_TIMED_OUT), None)
    first = producer.send("t", [RECORD], 1.0)
    assert first[0].code() == KafkaError._MSG_TIMED_OUT
    assert producer.send("t", [RECORD], 1.0) == [None]
    assert len(made) == 2 and made[0].purged


def test_a_record_refused_for_its_size_keeps_the_client():
    producer, made = producer_making(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE), None)
    assert producer.send("t", [RECORD], 1.0)[0].code() == KafkaError.MSG_SIZE_TOO_LARGE
    assert producer.send("t", [RECORD], 1.0)[0].code() == KafkaError.MSG_SIZE_TOO_LARGE
    assert len(made) == 1
