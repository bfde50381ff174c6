"""Break things on purpose while messages flow, then check the ledger: nothing lost, nothing twice."""

import collections
import json
import os
import threading

from confluent_kafka import Producer

from infra.process import wait_until
from shared_domain.partitioning import PARTITIONER
from tests.support.services import start_consumer

from .ledger import LEDGERS, settle
from .load import Load

FAST_STORE_RETRIES = {"MONGODB_TIMEOUT_MS": 500, "STORE_RETRY_FIRST_WAIT_S": 0.2, "STORE_RETRY_ATTEMPTS": 3}


def when_stored(stack, load, fraction: float) -> None:
    """Wait until a fraction of the load is stored."""
    wait_until(lambda: stack.stored_count() >= load.total * fraction, timeout=120, interval=0.1,
               what=f"{fraction:.0%} of the load stored")


def test_a_consumer_killed_mid_batch_and_restarted_loses_and_duplicates_nothing(stack_factory):
    stack = stack_factory(clients=("clientB",), CONSUMER_BATCH_SIZE=200)
    consumer = stack.processes[0]
    load = Load(stack.api, "sigkill").start()
    for fraction in (0.25, 0.6):
        when_stored(stack, load, fraction)
        consumer.kill()
        consumer.start()
    load.wait()
    settle("consumer SIGKILL x2", stack, load)


def test_consumers_joining_and_leaving_a_group_lose_and_duplicate_nothing(stack_factory):
    # Consumers for every client share the partitions as a group; a per-client consumer reads its partition alone.
    stack = stack_factory(clients=("*",))
    first = stack.processes[0]
    load = Load(stack.api, "rebalance").start()
    when_stored(stack, load, 0.2)
    second = start_consumer(stack.env, "*", stack.logs, name="consumer-all-2")
    stack.processes.append(second)
    when_stored(stack, load, 0.5)
    first.stop()
    when_stored(stack, load, 0.7)
    third = start_consumer(stack.env, "*", stack.logs, name="consumer-all-3")
    stack.processes.append(third)
    load.wait()
    settle("rebalance: join, leave, join", stack, load)
    assert second.alive and third.alive
    first_log, second_log = first.log_path.read_text(), second.log_path.read_text()
    assert "consumer[*]: gave up client-messages" in first_log, "a consumer logs what it hands over"
    assert "consumer[*]: assigned client-messages" in second_log, "and what it is given"


def test_a_broker_restart_gives_quick_503s_and_no_lost_202s(stack_factory, killable_kafka):
    # Two threads a worker for sixteen senders: a send waiting for the broker holds no thread, so none waits for
    # one while the others wait out the delivery timeout.
    stack = stack_factory(clients=("clientB",), kafka_address=killable_kafka.bootstrap_servers, KAFKA_DELIVERY_TIMEOUT_MS=3000,
                          PRODUCER_THREADS=2)
    load = Load(stack.api, "broker").start()
    when_stored(stack, load, 0.3)
    killable_kafka.stop()
    wait_until(lambda: len(load.ids_with(503)) >= 20, timeout=60, what="sends refused while the broker is down")
    killable_kafka.start()
    load.wait()
    refused = [load.outcomes[i] for i in load.ids_with(503)]
    assert max(outcome.seconds for outcome in refused) < 3 + 2 + 1, "a 503 took longer than the delivery timeout"
    assert not load.ids_with(0) and not load.ids_with(500)
    # However long the broker took to come back (the load may have ended first), once the producer is ready
    # again every send succeeds.
    wait_until(lambda: stack.api.get("/ready").status == 200, timeout=60, what="producer /ready after the restart")
    after = Load(stack.api, "restarted", total=200).start()
    after.wait()
    assert set(after.ids_with(202)) == set(after.outcomes), "sends after the restart must succeed"
    settle("broker stop/start", stack, load)
    settle("broker stop/start: sends after", stack, after, all_stored=True)
    # The consumer tells of the recovery once the broker has answered for a while, which may be after the last store.
    wait_until(lambda: "kafka recovered" in stack.processes[0].log_path.read_text(), timeout=30,
               what="the consumer to log the broker's recovery")
    log = stack.processes[0].log_path.read_text()
    assert log.count("waiting for kafka") == 1 and log.count("kafka recovered") == 1, "one line down, one line up"


def test_a_store_outage_longer_than_the_retries_dead_letters_and_loses_nothing(stack_factory, killable_store):
    stack = stack_factory(clients=("clientB",), mongo_uri=killable_store.uri, **FAST_STORE_RETRIES)
    load = Load(stack.api, "store").start()
    when_stored(stack, load, 0.3)
    killable_store.stop()
    before = stack.dead_letter_count()
    # The consumer's log comes with a timeout: what it was doing instead of dead-lettering.
    wait_until(lambda: stack.dead_letter_count() >= before + 100, timeout=120, what="records dead-lettered in the outage",
               process=stack.processes[0])
    killable_store.start()
    load.wait()
    ledger = settle("store outage beyond retries", stack, load)
    assert ledger.dead_lettered and ledger.stored
    replay = stack.cli("dlq", "replay", "--to", "clientB", "--error-type", "StoreUnavailable", timeout=300)
    assert replay.returncode == 0, replay.stderr
    left = collections.Counter((item["errorType"], item["status"], item["reason"][:80])
                               for item in stack.all_failures(to="clientB") if item["status"] != "replayed")
    assert f"replayed {len(ledger.dead_lettered)}, skipped 0, refused 0" in replay.stdout, f"left alone: {left}"
    settle("store outage, then one replay", stack, load, all_stored=True)
    again = stack.cli("dlq", "replay", "--to", "clientB", "--error-type", "StoreUnavailable")
    assert "replayed 0, skipped 0, refused 0" in again.stdout


def test_a_producer_stopped_under_load_kept_every_202(stack_factory):
    stack = stack_factory(clients=("clientB",))
    producer = stack.producer
    load = Load(stack.api, "sigterm").start()
    wait_until(lambda: load.done >= load.total * 0.4, timeout=120, what="40% of the sends answered")
    producer.stop()
    wait_until(lambda: load.done >= load.total * 0.5, timeout=120, what="sends while the producer is down")
    producer.start()
    wait_until(lambda: stack.api.get("/ready").status == 200, timeout=60, what="the producer back", process=producer)
    load.wait()
    assert load.ids_with(0), "some sends should have met the stopped producer"
    settle("producer SIGTERM and restart", stack, load)


def poison_values(count: int):
    """A mix of garbage, huge, schema-breaking and wrongly typed records."""
    kinds = [
        lambda n: os.urandom(64) + b"\xff",
        lambda n: json.dumps({"schemaVersion": 1, "messageId": f"huge-{n}", "from": "clientA", "to": "clientB",
                              "message": "x" * 300_000, "sentAt": "2026-01-01T00:00:00Z"}).encode(),
        lambda n: json.dumps({"hello": "world", "n": n}).encode(),
        lambda n: json.dumps({"schemaVersion": 1, "messageId": n, "from": ["clientA"], "to": "clientB",
                              "message": {"text": 1}, "sentAt": 12}).encode(),
    ]
    return [kinds[n % len(kinds)](n) for n in range(count)]


def test_a_flood_of_poison_goes_to_the_dead_letter_queue_while_valid_traffic_is_stored(stack_factory):
    stack = stack_factory(clients=("clientB",))
    consumer = stack.processes[0]
    positions: list = []
    values = poison_values(max(400, int(os.environ.get("FAULT_MESSAGES", "2000")) // 4))

    def flood():
        producer = Producer({"bootstrap.servers": stack.kafka, "acks": "all", "linger.ms": 5, "partitioner": PARTITIONER})
        for value in values:
            producer.produce(stack.topics[0], key=b"clientB", value=value,
                             on_delivery=lambda error, record: positions.append((record.partition(), record.offset())))
            producer.poll(0)
        producer.flush(30)

    load = Load(stack.api, "poison").start()
    flooder = threading.Thread(target=flood)
    flooder.start()
    load.wait()
    flooder.join(60)
    assert len(positions) == len(values)
    settle("poison flood", stack, load)
    expected = {f"{stack.topics[0]}:{p}:{o}:clientB" for p, o in positions}
    wait_until(lambda: expected <= {item["id"] for item in stack.all_failures(client="clientB")}, timeout=60,
               what="every poison record in GET /failed-messages")
    failures = [item for item in stack.all_failures(client="clientB") if item["id"] in expected]
    assert {item["errorType"] for item in failures} == {"UndecodableRecord", "SchemaViolation"}
    LEDGERS.append(f"ledger[poison flood]: poison produced={len(values)} poison dead-lettered={len(failures)}")
    assert consumer.alive
