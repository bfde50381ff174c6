"""Request metrics: by route, method and status, with a bounded set of methods whatever callers send."""

from prometheus_client import REGISTRY

from .conftest import bearer


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
