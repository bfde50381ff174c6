"""A bad setting stops a service at start with one line naming the variable, exit code 2."""

import os
import subprocess

import pytest

from tests.support.services import BIN

GUNICORN = [str(BIN / "gunicorn"), "-c", "python:producer_service.entrypoints.gunicorn_config"]
CONSUMER = [str(BIN / "consumer-service"), "run", "--client", "clientB"]
OPERATOR = [str(BIN / "consumer-service"), "operator"]


@pytest.mark.parametrize("argv, variable, value", [
    (GUNICORN, "KAFKA_DELIVERY_TIMEOUT_MS", "soon"),
    (GUNICORN, "PRODUCER_WORKERS", "0"),
    (CONSUMER, "STORE_RETRY_FIRST_WAIT_S", "-1"),
    (CONSUMER, "PROJECT_DEAD_LETTERS", "maybe"),
    (CONSUMER, "CLIENT_ID", "no spaces allowed"),
    (CONSUMER, "KAFKA_CLIENT_LOG_LEVEL", "chatty"),
    (GUNICORN, "KAFKA_CLIENT_LOG_LEVEL", "chatty"),
    (GUNICORN, "REQUEST_READ_TIMEOUT_S", "soon"),
    (GUNICORN, "SESSION_TTL_S", "5"),
    (OPERATOR, "OPERATOR_THREADS", "0"),
    (OPERATOR, "SESSION_TTL_S", "forever"),
    (OPERATOR, "AUTH_ENABLED", "maybe"),
    (GUNICORN, "LOG_FORMAT", "xml"),
    (CONSUMER, "LOG_FORMAT", "xml"),
    (OPERATOR, "LOG_FORMAT", "xml"),
    (GUNICORN, "OPERATOR_TOKEN", "short"),
    (OPERATOR, "OPERATOR_TOKEN", "short"),
    (GUNICORN, "KAFKA_SECURITY_PROTOCOL", "tls"),
    (CONSUMER, "KAFKA_SASL_MECHANISM", "MD5"),
    (OPERATOR, "KAFKA_SSL_CA_LOCATION", "/no/such/ca.pem"),
    (CONSUMER, "TOPIC_REPLICATION_FACTOR", "-1"),
])
def test_a_bad_setting_exits_2_naming_the_variable(argv, variable, value):
    argv = argv[:-2] if variable == "CLIENT_ID" else argv
    result = subprocess.run(argv, env={**os.environ, variable: value}, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()] and variable in result.stderr


def test_more_replicas_than_brokers_stops_a_consumer_naming_the_setting(kafka, unique):
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka.address, "MESSAGES_TOPIC": f"replicas-{unique}",
           "DEAD_LETTER_TOPIC": f"replicas-{unique}-dlq", "STORED_EVENTS_TOPIC": f"replicas-{unique}-stored",
           "TOPIC_REPLICATION_FACTOR": "3"}
    result = subprocess.run([str(BIN / "consumer-service"), "create-topics"], env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [result.stderr.strip()] and "TOPIC_REPLICATION_FACTOR" in result.stderr
