"""Kafka over SASL_SSL only (SCRAM-SHA-512, a CA of its own): `RUN_KAFKA_SECURITY=sasl_ssl make run`, the whole
pipeline on such a broker, and what it refuses."""

import subprocess
import uuid

import pytest
from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient

from infra.kafka_security import make_ca
from infra.process import wait_until
from tests.support.local_stack import LocalStackRun, environ, running
from tests.support.services import BIN
from tests.support.sse import SseStream
from tests.support.stack import build_stack

from .outage import QUICK_STORE_RETRIES, restore, send_during_outage, wait_projected

SERVICES = {"producer": [str(BIN / "gunicorn"), "-c", "python:producer_service.entrypoints.gunicorn_config"],
            "consumer": [str(BIN / "consumer-service"), "run", "--client", "clientB"],
            "operator": [str(BIN / "consumer-service"), "operator"]}


# make run first: its broker is gone before the module's secured broker starts, so two never run at once.
@pytest.fixture
def secured_run(tmp_path):
    """A `RUN_KAFKA_SECURITY=sasl_ssl make run` with one consumer, on free ports and a data dir of its own."""
    yield from running(LocalStackRun(tmp_path, RUN_KAFKA_SECURITY="sasl_ssl", RUN_CLIENTS="clientB"))


def test_make_run_with_sasl_ssl_secures_its_broker_and_every_service_goes_over_it(secured_run):
    security = secured_run.workdir / "data" / "kafka-sasl_ssl" / "security"
    assert [line for line in secured_run.lines() if line.startswith("kafka:   SASL_SSL on 127.0.0.1:")]
    assert f"CA certificate {security / 'ca.pem'}, password file {security / 'password'}" in secured_run.output()
    assert (security / "password").read_text().strip() not in secured_run.output()
    services = ("consumer-clientB", "producer", "operator")
    pids = secured_run.pids()
    assert {name: environ(pids[name])["KAFKA_SECURITY_PROTOCOL"] for name in services} == dict.fromkeys(services, "SASL_SSL")
    message_id = f"make-run-sasl-ssl-{uuid.uuid4().hex[:8]}"
    assert secured_run.api.send("clientB", "clientB", "through make run", messageId=message_id).status == 202
    wait_until(lambda: message_id in {m["messageId"] for m in secured_run.api.get("/messages", to="clientB").body}, 60,
               what="the message in GET /messages")
    assert secured_run.stop() == 0 and secured_run.lines()[-1] == "all processes stopped"
    assert secured_run.marked_processes() == []


@pytest.mark.parametrize("env, says", [
    ({"RUN_KAFKA_SECURITY": "tls"}, "RUN_KAFKA_SECURITY must be one of plaintext, sasl_ssl, got 'tls'"),
    ({"RUN_KAFKA_SECURITY": "sasl_ssl", "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"},
     "RUN_KAFKA_SECURITY secures the broker make run starts, but KAFKA_BOOTSTRAP_SERVERS names one it does not start"),
])
def test_make_run_refuses_a_security_it_cannot_give_with_one_line_and_exit_2(tmp_path, env, says):
    run = LocalStackRun(tmp_path, **env)
    run.start()
    try:
        assert run.process.wait(60) == 2, run.output()
        [line] = run.output().splitlines()
        assert line.startswith(f"make run cannot go on: configuration error: {says}"), line
        assert run.marked_processes() == []
    finally:
        run.close()


def test_make_run_refuses_secured_kafka_data_without_its_scram_user_with_one_line_and_exit_2(tmp_path):
    formatted = tmp_path / "data" / "kafka-sasl_ssl" / "kraft-logs"
    formatted.mkdir(parents=True)
    (formatted / "meta.properties").write_text("node.id=1\n")  # as a format without --add-scram leaves it
    run = LocalStackRun(tmp_path, RUN_KAFKA_SECURITY="sasl_ssl")
    run.start()
    try:
        assert run.process.wait(60) == 2, run.output()
        [line] = [line for line in run.lines() if line.startswith("make run cannot go on")]
        assert line.startswith(f"make run cannot go on: the Kafka data in {formatted} was formatted without the SCRAM "
                               "user SASL_SSL needs"), line
        assert "Traceback" not in run.output() and run.marked_processes() == []
    finally:
        run.close()


@pytest.fixture(scope="module")
def stack(secured_kafka, killable_store, tmp_path_factory):
    """Producer, operator server and a clientB consumer whose every Kafka client goes over SASL_SSL."""
    stack = build_stack(secured_kafka.bootstrap_servers, killable_store.uri, ("clientB",),
                        tmp_path_factory.mktemp("stack"), **QUICK_STORE_RETRIES, **secured_kafka.client_env())
    yield stack
    for process in stack.processes:
        process.stop()


def stored_ids(stack, **filters) -> set[str]:
    """The ids of the stored messages matching the filters, as GET /messages lists them."""
    return {message["messageId"] for message in stack.all_messages(**filters)}


def exits(env: dict) -> dict[str, subprocess.CompletedProcess]:
    """Start every service at once with `env`; what each printed and its exit status."""
    started = {name: subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True) for name, argv in SERVICES.items()}
    ended = {}
    for name, process in started.items():
        out, err = process.communicate(timeout=60)
        ended[name] = subprocess.CompletedProcess(process.args, process.returncode, out, err)
    return ended


def test_a_message_sent_over_the_api_is_streamed_live_and_listed_once_stored(stack):
    stream = SseStream(stack.api.base_url, stack.api.tokens["clientB"])
    try:
        assert stream.status == 200, stream.error_body()
        assert stream.next_event().kind == "position"
        text = f"over SASL_SSL {uuid.uuid4()}"
        reply = stack.api.send("clientA", "clientB", text)
        assert reply.status == 202, reply.body
        message_id = reply.body["messageId"]
        [live] = stream.messages_until(message_id, timeout=30)
    finally:
        stream.close()
    assert (live["from"], live["to"], live["message"]) == ("clientA", "clientB", text)
    wait_until(lambda: message_id in stored_ids(stack, to="clientB"), timeout=30, what="the message in GET /messages")


def test_a_dead_lettered_message_is_replayed_by_the_operator_api_and_stored(stack, killable_store):
    replies = send_during_outage(stack, killable_store, 1, sender="clientC")
    restore(stack, killable_store)
    ids = {reply.body["messageId"] for reply in replies}
    [failure] = wait_projected(stack, ids, **{"from": "clientC"})
    done = stack.operator.post("/failed-messages/replay", {"filter": {"from": "clientC"}, "by": "sasl-ssl-op"},
                               headers=stack.operator.as_("ops"))
    assert done.status == 200 and done.body["done"] == [failure["id"]], done.body
    wait_until(lambda: ids <= stored_ids(stack, to="clientB"), timeout=30, what="the replayed message in GET /messages")


def test_a_plaintext_client_gets_no_metadata_and_no_acknowledgement(stack, secured_kafka):
    plaintext = {"bootstrap.servers": secured_kafka.bootstrap_servers}
    producer = Producer({**plaintext, "acks": "all", "message.timeout.ms": 5000})
    delivered = []
    producer.produce(stack.topics[0], key=b"clientB", value=b"{}", on_delivery=lambda error, _: delivered.append(error))
    with pytest.raises(KafkaException):
        AdminClient(plaintext).list_topics(timeout=5)
    producer.flush(15)
    assert len(delivered) == 1 and delivered[0] is not None, "the record was acknowledged over PLAINTEXT"


def test_a_wrong_password_stops_every_service_at_start_with_one_line_naming_it(stack):
    env = {**stack.env, "KAFKA_SASL_PASSWORD": "not-the-password"}
    del env["KAFKA_SASL_PASSWORD_FILE"]
    for name, result in exits(env).items():
        assert result.returncode == 2, (name, result.stderr)
        [line] = result.stderr.strip().splitlines()
        assert "KAFKA_SASL_PASSWORD" in line and "not-the-password" not in line, (name, line)


def test_a_ca_that_did_not_sign_the_brokers_certificate_stops_every_service_naming_it(stack, tmp_path):
    make_ca(tmp_path / "other-ca.pem", tmp_path / "other-ca.key", "some other CA")
    for name, result in exits({**stack.env, "KAFKA_SSL_CA_LOCATION": str(tmp_path / "other-ca.pem")}).items():
        assert result.returncode == 2, (name, result.stderr)
        [line] = result.stderr.strip().splitlines()
        assert "KAFKA_SSL_CA_LOCATION" in line, (name, line)
