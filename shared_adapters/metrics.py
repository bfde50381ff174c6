"""Prometheus metrics both Flask apps share: requests by route and status, their latency, and GET /metrics.

Under gunicorn with several workers, PROMETHEUS_MULTIPROC_DIR must be set before this module is
first imported (the producer's gunicorn config does it), so that every worker's counts add up.
"""

import functools
import os
import time

from flask import Blueprint, Flask, Response, g, request
from prometheus_client import (CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Gauge, Histogram,
                               generate_latest, multiprocess, values)

from .access import protect

# Every metric of the services is made from the Counter, Gauge and Histogram imported here, so that it is made after
# the value class below is chosen (two value classes in one process would write to the same files).


def _pid_known_per_fork():
    """The process id, read once per process instead of at every count: after a fork, the child's."""
    process = {"pid": os.getpid()}
    os.register_at_fork(after_in_child=lambda: process.update(pid=os.getpid()))
    return lambda: process["pid"]


if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    # prometheus_client asks the kernel for the process id at every increment, to notice a fork: about a
    # twentieth of a single send's interpreter time. The same check, with the id kept up to date at each fork.
    values.ValueClass = values.MultiProcessValue(_pid_known_per_fork())

REQUESTS = Counter("http_requests_total", "HTTP requests answered, by route, method and status.",
                   ["route", "method", "status"])
LATENCY = Histogram("http_request_duration_seconds", "Time to answer an HTTP request (for a stream: to open it).",
                    ["route", "method"], buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))


# Any word is a method to gunicorn: others are counted as one, so no caller can add series at will.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def observe_requests(app: Flask) -> None:
    """Count every answer of the app and time it, by the route that matched (`unmatched` for none)."""

    @app.before_request
    def _start_clock():
        g.started = time.perf_counter()

    @app.after_request
    def _observe(response):
        if getattr(response, "answered_later", False):  # counted when written (deferred_answers)
            return response
        observe_answer(*request_labels(), response.status_code, g.get("started"))
        return response


def request_labels() -> tuple[str, str]:
    """The current request's route and method, as the request metrics label them."""
    route = request.url_rule.rule if request.url_rule is not None else "unmatched"
    return route, request.method if request.method in METHODS else "other"


def observe_answer(route: str, method: str, status: int, started: float | None) -> None:
    """Count one answer, and time it from `started` (perf_counter) when known."""
    _requests(route, method, status).inc()
    if started is not None:
        _latency(route, method).observe(time.perf_counter() - started)


# Labels come from a bounded set (the app's routes, METHODS, HTTP statuses): each series is looked up once.
@functools.cache
def _requests(route: str, method: str, status: int):
    return REQUESTS.labels(route, method, str(status))


@functools.cache
def _latency(route: str, method: str):
    return LATENCY.labels(route, method)


def metrics_text() -> bytes:
    """Every metric in Prometheus's text format: this process's, or every worker's in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def metrics_blueprint(*roles: str) -> Blueprint:
    """GET /metrics, for principals of these roles only (Prometheus sends the bearer token)."""
    blueprint = Blueprint("metrics", __name__)
    protect(blueprint, roles)

    @blueprint.get("/metrics")
    def metrics():
        """The metrics in Prometheus's text format."""
        return Response(metrics_text(), content_type=CONTENT_TYPE_LATEST)

    return blueprint
