"""The operator CLI stops with one clear line, not a stack trace, when the store does not answer."""

import os
import subprocess

import pytest

from infra.process import free_port
from tests.support.services import BIN


@pytest.mark.parametrize("command", [["list"], ["show", "client-messages:0:1:clientB"], ["replay", "--dry-run"],
                                     ["discard", "--reason", "spam"]])
def test_a_store_that_does_not_answer_ends_the_command_with_exit_1_and_one_line(command):
    env = {**os.environ, "MONGODB_URI": f"mongodb://127.0.0.1:{free_port()}/", "MONGODB_TIMEOUT_MS": "300"}
    result = subprocess.run([str(BIN / "consumer-service"), "dlq", *command], env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 1
    assert "stopped: the store did not answer" in result.stderr and "Traceback" not in result.stderr
