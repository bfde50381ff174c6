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
])
def test_a_bad_setting_exits_2_naming_the_variable(argv, variable, value):
    argv = argv[:-2] if variable == "CLIENT_ID" else argv
    result = subprocess.run(argv, env={**os.environ, variable: value}, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()] and variable in result.stderr
