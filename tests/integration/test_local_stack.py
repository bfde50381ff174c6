"""`make run` explains in one clear message, without a stack trace, why it cannot go on."""

import os
import socket
import subprocess
import sys

import pytest

from infra.process import free_port, run
from tests.support.local_stack import LocalStackRun


def test_a_taken_producer_address_stops_make_run_before_it_starts_anything(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        bind = f"127.0.0.1:{taken.getsockname()[1]}"
        # Servers named in the environment are never started, so nothing local could be left behind either way.
        env = {**os.environ, "PRODUCER_BIND": bind, "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
               "MONGODB_URI": "mongodb://127.0.0.1:1/", "CLIENT_MESSAGING_CACHE": str(tmp_path)}
        result = subprocess.run([sys.executable, "-m", "infra.local_stack"], env=env, capture_output=True, text=True,
                                timeout=60)
    assert result.returncode == 1
    assert f"make run cannot go on: {bind} is already in use" in result.stderr and "Traceback" not in result.stderr
    assert "PRODUCER_BIND" in result.stderr and "starting" not in result.stdout


def test_a_helper_command_that_hangs_is_reported_as_a_timeout_naming_it():
    with pytest.raises(TimeoutError, match="creating topics did not finish within 0.5s"):
        run(["sleep", "30"], "creating topics", timeout=0.5)


def test_a_store_uri_that_does_not_answer_stops_make_run_with_exit_2_and_one_line_before_it_starts_anything(tmp_path):
    closed = free_port()
    uri = f"mongodb://app:n0t-to-be-seen@127.0.0.1:{closed}/?w=majority&retryWrites=true"
    stack = LocalStackRun(tmp_path, MONGODB_URI=uri, RUN_MONGODB_PING_TIMEOUT_S="0.5")
    stack.start()
    try:
        assert stack.process.wait(60) == 2, stack.output()
        [line] = stack.output().splitlines()
        assert line.startswith(f"make run cannot go on: the store at MONGODB_URI (mongodb://app:****@127.0.0.1:{closed}/"
                               f"?w=majority&retryWrites=true) did not answer a ping within 0.5s: 127.0.0.1:{closed}: ")
        assert "Connection refused" in line and line.endswith("or unset MONGODB_URI to run FerretDB here")
        assert "n0t-to-be-seen" not in line and stack.marked_processes() == []
    finally:
        stack.close()
