"""Both servers answer generated requests only as their OpenAPI documents say (schemathesis, every check).

schemathesis reads each server's /openapi.json and calls every operation with requests made from
the document, valid and invalid: the coverage phase's boundary values, hypothesis's fuzzing and
stateful sequences, with a fixed seed and a bounded number of cases per operation. Each server is
run once with a client's token and once with an operator's. GET /stream is read up to its first
event (schemathesis cuts a stream short after `max-stream-events`), which it checks against the
document's event schema; the events that come later (`chat-message`, `overflow`) are checked
against the same schema by every stream the end-to-end tests read (tests/support/sse.py).
"""

import json
import os
import subprocess
import time
import uuid
from urllib.parse import parse_qs, urlparse

import pytest

from infra.process import wait_until
from tests.support.ledgers import LEDGERS
from tests.support.services import BIN
from tests.support.sse import SseStream

SEED = 20261204
EXAMPLES = 50  # per operation and phase
CLIENT, OPERATOR, RECIPIENTS = "clientA", "ops", ("clientB", "clientC")
PASSES = [("producer", CLIENT), ("producer", OPERATOR), ("operator", OPERATOR), ("operator", CLIENT)]
# Values a valid request may only carry when the server issued them are given as schemathesis dictionaries.
# A request refused before any endpoint sees it (a body, line or head too large) is refused all the same.
# Every string of a JSON body must be storable text (no NUL): each body's description says so, not its schema.
# A valid recipient must also be registered, which a document cannot say: POST /send-message refuses others with 400.
# GET /failed-messages/{failure_id} also matches the paths of the actions, so their Allow names GET too.
# Revoking a token the client does not have is a 404 about the token, not the client just created.
CONFIG = """\
seed = {seed}
workers = 1
request-timeout = 10
[generation]
max-examples = {examples}
database = "none"
allow-x00 = false
[checks]
enabled = true
negative_data_rejection.expected-statuses = [400, 401, 403, 404, 405, 406, 409, 413, 414, 415, 422, 428, 429, 431,
                                             "5xx"]
[auth.openapi.bearer]
bearer = "${{API_TOKEN}}"
[dictionaries.recipients]
values = {recipients}
[dictionaries.cursors]
values = {cursors}
[dictionaries.positions]
values = {positions}
[parameters]
"body.to" = {{ dictionary = "recipients" }}
"query.cursor" = {{ dictionary = "cursors" }}
"query.after" = {{ dictionary = "positions" }}
"header.Last-Event-ID" = {{ dictionary = "positions" }}
[[operations]]
include-path = "/stream"
max-stream-events = 1
[[operations]]
include-path = "/send-message"
checks.positive_data_acceptance.expected-statuses = ["2xx", 400, 401, 403, 404, 409, 429, "5xx"]
[[operations]]
include-path-regex = "^/failed-messages/.+"
include-method = "POST"
checks.allow_header_conformance.enabled = false
[[operations]]
include-path = "/clients/{{client_id}}/revoke"
checks.ensure_resource_availability.enabled = false
"""


@pytest.fixture(scope="module")
def stack(stack_factory):
    """A consumer for every client, the producer and the operator server.

    Generated requests fail authentication on purpose, often, from one address: that limit is tested in tests/unit.
    """
    return stack_factory(clients=("*",), AUTH_FAILURE_LIMIT=100_000, STREAM_HEARTBEAT_S=1)


@pytest.fixture(scope="module")
def issued(stack) -> dict:
    """A page cursor and a stream position the producer issued to the client, for valid requests to carry."""
    for n in range(2):
        sent = stack.api.send(CLIENT, RECIPIENTS[0], f"conformance {n}", messageId=f"api-{uuid.uuid4().hex}")
        assert sent.status == 202, sent.body
    wait_until(lambda: len(stack.all_messages_as(CLIENT)) >= 2, timeout=30, what="the client's messages stored")
    link = stack.api.get("/messages", stack.api.as_(CLIENT), limit=1).headers["Link"]
    cursor = parse_qs(urlparse(link[link.index("<") + 1:link.index(">")]).query)["cursor"][0]
    stream = SseStream(stack.api.base_url, stack.api.tokens[CLIENT])
    try:
        position = stream.next_event().id
    finally:
        stream.close()
    return {"cursors": [cursor], "positions": [position]}


def write_config(path, issued: dict) -> None:
    """The schemathesis.toml of every pass: seed, cases per operation, every check, issued values."""
    path.write_text(CONFIG.format(seed=SEED, examples=EXAMPLES, recipients=json.dumps(list(RECIPIENTS)),
                                  cursors=json.dumps(issued["cursors"]), positions=json.dumps(issued["positions"])))


def run_schemathesis(base_url: str, token: str, config, report) -> tuple[dict, str]:
    """Run `st run` against a server's document with a token; its JSON report and what it printed."""
    argv = [str(BIN / "st"), "--config-file", str(config), "run", f"{base_url}/openapi.json", "--no-color",
            "--report", "json", "--report-json-path", str(report)]
    done = subprocess.run(argv, env={**os.environ, "API_TOKEN": token}, capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL, cwd=config.parent)
    assert report.exists(), f"schemathesis wrote no report (exit {done.returncode}):\n{done.stdout}\n{done.stderr}"
    return json.loads(report.read_text()), done.stdout


def failures_section(output: str) -> str:
    """The part of schemathesis's output that names each failure and how to reproduce it."""
    start = output.find("= FAILURES =")
    return output[output.rfind("\n", 0, start) + 1:] if start >= 0 else output


@pytest.mark.parametrize("server, caller", PASSES)
def test_every_answer_to_generated_requests_is_one_the_document_describes(stack, issued, tmp_path, server, caller):
    api = stack.api if server == "producer" else stack.operator
    config = tmp_path / "schemathesis.toml"
    write_config(config, issued)
    started = time.monotonic()
    report, output = run_schemathesis(api.base_url, api.tokens[caller], config, tmp_path / "report.json")
    assert not report["failures"] and not report["errors"], failures_section(output)
    assert report["operations"]["tested"] == report["operations"]["total"], report["operations"]
    LEDGERS.append(f"ledger[API conformance]: schemathesis {report['schemathesis_version']} sent "
                   f"{report['test_cases']['generated']} generated requests to the {server}'s "
                   f"{report['operations']['tested']} operations as {caller} (seed {SEED}, at most {EXAMPLES} "
                   f"per operation and phase, every check) in {time.monotonic() - started:.0f}s: 0 failures")
