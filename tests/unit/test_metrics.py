"""Request metrics: by route, method and status, with a bounded set of methods whatever callers send; and the
consumer's count of unknown envelope fields, with a bounded set of field labels whatever producers send."""

import subprocess
import sys

import pytest
from prometheus_client import REGISTRY

from consumer_service.application.handle_batch import BatchOutcome
from consumer_service.entrypoints.metrics import FieldLabels, record_batch
from shared_adapters.mongo_identities import MongoIdentityRegistry
from shared_domain.identity import METRICS

from .conftest import bearer


@pytest.fixture
def metrics_token(database, tokens):
    """The token of `prometheus`, a registered metrics reader."""
    registry = MongoIdentityRegistry(database)
    registry.add(METRICS, "prometheus")
    return registry.issue_token(METRICS, "prometheus")[1]


def _count(**labels) -> float:
    return REGISTRY.get_sample_value("http_requests_total", labels) or 0.0


def test_answers_are_counted_by_route_method_and_status(client):
    before = _count(route="/messages", method="GET", status="200")
    assert client.get("/messages").status_code == 200
    assert _count(route="/messages", method="GET", status="200") == before + 1


def test_unknown_methods_and_paths_are_counted_as_one_label_each(app):
    before = _count(route="unmatched", method="other", status="404")
    for method in ("FOOA", "FOOB", "XYZQ"):
        app.test_client().open("/nowhere", method=method)
    assert _count(route="unmatched", method="other", status="404") == before + 3
    assert REGISTRY.get_sample_value("http_requests_total", {"route": "unmatched", "method": "FOOA",
                                                             "status": "404"}) is None


def test_metrics_are_for_operators(app, tokens):
    test_client = app.test_client()
    assert test_client.get("/metrics").status_code == 401
    assert test_client.get("/metrics", headers=bearer(tokens["clientA"])).status_code == 403
    answer = test_client.get("/metrics", headers=bearer(tokens["ops"]))
    assert answer.status_code == 200 and b"http_requests_total" in answer.get_data()


def test_a_metrics_reader_gets_the_producers_metrics_and_nothing_else(app, metrics_token):
    test_client = app.test_client()
    answer = test_client.get("/metrics", headers=bearer(metrics_token))
    assert answer.status_code == 200 and b"http_requests_total" in answer.get_data()
    for path in ("/messages", "/failed-messages", "/conversations", "/clients"):
        denied = test_client.get(path, headers=bearer(metrics_token))
        assert denied.status_code == 403 and denied.get_json()["error"] == "forbidden", path
    sent = test_client.post("/send-message", json={"to": "clientB", "message": "hi"}, headers=bearer(metrics_token))
    assert sent.status_code == 403
    sign_in = test_client.post("/session", json={"name": "prometheus", "token": metrics_token})
    assert sign_in.status_code == 401


def test_the_operator_server_gives_its_metrics_to_operators_and_metrics_readers_only(operator_app, tokens,
                                                                                      metrics_token):
    test_client = operator_app.test_client()
    for token in (tokens["ops"], metrics_token):
        answer = test_client.get("/metrics", headers=bearer(token))
        assert answer.status_code == 200 and b"http_requests_total" in answer.get_data()
    assert test_client.get("/metrics", headers=bearer(tokens["clientA"])).status_code == 403
    for path in ("/failed-messages", "/failed-message-counts"):
        assert test_client.get(path, headers=bearer(metrics_token)).status_code == 403, path
    replay = test_client.post("/failed-messages/replay", json={"filter": {}, "dryRun": True},
                              headers=bearer(metrics_token))
    assert replay.status_code == 403
    assert test_client.post("/session", json={"name": "prometheus", "token": metrics_token}).status_code == 401


def test_field_labels_are_the_first_safe_names_then_other():
    labels = FieldLabels(limit=3)
    hostile = ["", "a b", "x" * 65, "new\nline", "\ud800", "é", 'q"uote', "{le}", "a\x00"]
    assert [labels(name) for name in hostile] == ["other"] * len(hostile)
    assert [labels(name) for name in ("priority", "thread.id", "v2-flag", "fourth", "priority")] == [
        "priority", "thread.id", "v2-flag", "other", "priority"]


def test_a_consumer_counts_the_unknown_fields_of_a_batch():
    def count(field):
        return REGISTRY.get_sample_value("consumer_unknown_envelope_fields_total",
                                         {"consumer": "consumer[test]", "field": field}) or 0.0

    before = count("other")
    record_batch("consumer[test]", [], BatchOutcome(stored=3, unknown_fields={"x" * 100: 2, "\n": 1}), 0.01)
    assert count("other") == before + 3


FORKED_COUNTS = """
import os, sys
os.environ["PROMETHEUS_MULTIPROC_DIR"] = sys.argv[1]
from shared_adapters.metrics import Counter, metrics_text
sends = Counter("forked_sends", "Sends counted in a parent and the child it forked.")
sends.inc()
child = os.fork()
if child == 0:
    sends.inc(10)
    os._exit(0)
os.waitpid(child, 0)
sends.inc(100)
print([line for line in metrics_text().decode().splitlines() if line.startswith("forked_sends_total")][0])
"""


def test_counts_made_before_and_after_a_fork_in_parent_and_child_all_add_up(tmp_path):
    # The process id is read once per fork: a child that kept its parent's would write its counts over the parent's.
    line = subprocess.run([sys.executable, "-c", FORKED_COUNTS, str(tmp_path)], capture_output=True, text=True,
                          check=True, timeout=60).stdout.strip()
    assert line == "forked_sends_total 111.0"
    assert len(list(tmp_path.glob("counter_*.db"))) == 2
