"""gunicorn settings: threaded workers share one Kafka producer per worker process.

A bad setting stops the server before any worker starts, with one line naming it (exit 2).
"""

import glob
import logging
import os
import secrets
import shutil
import sys
import tempfile

# Before anything imports prometheus_client: every worker writes its counts where /metrics adds them up.
# A given directory is made if missing and emptied, so counts start at zero with each server.
_own_metrics_dir = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _own_metrics_dir:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="producer-metrics-")
else:
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)
    for _stale in glob.glob(os.path.join(os.environ["PROMETHEUS_MULTIPROC_DIR"], "*.db")):
        os.remove(_stale)

# Imported once the metrics directory is chosen (hence noqa: E402).
from producer_service.config import load_server_settings, load_settings  # noqa: E402
from producer_service.entrypoints.services import EXTENSION
from shared_adapters.http_worker import guarded_worker
from shared_adapters.kafka_connection import check_accepted
from shared_adapters.logs import GunicornLogger, gunicorn_log_config
from shared_domain.config import ConfigError

try:
    settings, server = load_settings(), load_server_settings()
    check_accepted(settings.kafka)
except ConfigError as error:
    if _own_metrics_dir:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
    print(str(error), file=sys.stderr)
    sys.exit(2)

# Every worker signs and checks cursors with the same key: without SECRET_KEY, one per server start.
os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(32))

bind, workers, threads = server.bind, server.workers, server.threads
# gunicorn's own lines and the app's, one format (LOG_FORMAT: json, or text for people).
logconfig_dict = gunicorn_log_config(server.log_level, server.log_format)
logger_class = GunicornLogger
# A broker outage shows as 503s and in /ready; librdkafka would log every reconnect attempt.
logging.getLogger("librdkafka").setLevel(server.kafka_client_log_level)

# gthread, except that a thread only gets a request once it has arrived whole; gunicorn's own errors are JSON.
worker_class = guarded_worker(server.request_read_timeout_s, settings.max_body_bytes, server.stream_threads)
# Open streams count as connections too.
worker_connections = 1000 + server.stream_threads
# Each worker listens on its own SO_REUSEPORT socket, so the kernel spreads connections evenly;
# on one shared socket, keep-alive connections pile onto whichever worker accepts fastest.
reuse_port = True
graceful_timeout = 20
timeout = 30
accesslog = "-" if server.access_log else None
# Several producers may run on one machine (tests, local runs); none needs the control socket.
control_socket_disable = True
wsgi_app = "producer_service.entrypoints.app:create_app()"


def child_exit(server, worker):
    """Stop counting a dead worker's live gauges (its counters stay in the totals)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    """Remove the metrics directory this server made."""
    if _own_metrics_dir:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)


def worker_exit(server, worker):
    """Flush in-flight records before a worker exits (SIGTERM, restart)."""
    services = getattr(getattr(worker, "wsgi", None), "extensions", {}).get(EXTENSION)
    if services is not None:
        services.close()
