"""The consumer's own /health, /ready and /metrics, on CONSUMER_HEALTH_PORT (off when 0)."""

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .metrics import metrics_answer

log = logging.getLogger(__name__)


def serve_health(host: str, port: int, checks: dict[str, Callable[[], bool]]) -> ThreadingHTTPServer:
    """Serve /health (liveness), /ready (200 only when every check passes) and /metrics (Prometheus)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the name http.server calls
            """Answer /health and /ready as JSON."""
            if self.path == "/health":
                self._answer(200, {"status": "ok"})
            elif self.path == "/ready":
                states = {name: ("up" if check() else "down") for name, check in checks.items()}
                ready = all(state == "up" for state in states.values())
                self._answer(200 if ready else 503, {"status": "ready" if ready else "unavailable", "dependencies": states})
            elif self.path == "/metrics":
                text, content_type = metrics_answer(checks)
                self._answer(200, text, content_type)
            else:
                self._answer(404, {"error": "not_found", "message": "try /health, /ready or /metrics", "details": {}})

        def _answer(self, status: int, body: dict | bytes, content_type: str = "application/json") -> None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args) -> None:
            """Keep probes out of the log."""

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    log.info("health endpoints on %s:%d", host, port)
    return server
