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
from producer_service.config import DEFAULT_THREADS, DEFAULT_WORKERS, load_settings  # noqa: E402
from producer_service.entrypoints.services import EXTENSION
from shared_adapters.http_worker import guarded_worker
from shared_adapters.kafka_connection import check_accepted
from shared_adapters.logs import GunicornLogger, gunicorn_log_config
from shared_domain.config import (ConfigError, read_float, read_int, read_log_format, read_log_level,
                                 read_str)

try:
    settings = load_settings()
    bind = read_str(os.environ, "PRODUCER_BIND", "127.0.0.1:8000")
    workers = read_int(os.environ, "PRODUCER_WORKERS", DEFAULT_WORKERS, minimum=1)
    threads = read_int(os.environ, "PRODUCER_THREADS", DEFAULT_THREADS, minimum=1)
    stream_threads = read_int(os.environ, "STREAM_THREADS", 1000, minimum=1)
    kafka_client_log_level = read_log_level(os.environ, "KAFKA_CLIENT_LOG_LEVEL", "CRITICAL")
    request_read_timeout_s = read_float(os.environ, "REQUEST_READ_TIMEOUT_S", 10.0, minimum=0.1)
    log_level = read_log_level(os.environ, "LOG_LEVEL", "INFO")
    log_format = read_log_format(os.environ)
    check_accepted(settings.kafka)
except ConfigError as error:
    if _own_metrics_dir:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
    print(str(error), file=sys.stderr)
    sys.exit(2)

# Every worker signs and checks cursors with the same key: without SECRET_KEY, one per server start.
os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(32))

# gunicorn's own lines and the app's, one format (LOG_FORMAT: json, or text for people).
logconfig_dict = gunicorn_log_config(log_level, log_format)
logger_class = GunicornLogger
# A broker outage shows as 503s and in /ready; librdkafka would log every reconnect attempt.
logging.getLogger("librdkafka").setLevel(kafka_client_log_level)

# gthread, except that a thread only gets a request once it has arrived whole; gunicorn's own errors are JSON.
worker_class = guarded_worker(request_read_timeout_s, settings.max_body_bytes, stream_threads)
# Open streams count as connections too.
worker_connections = 1000 + stream_threads
# Each worker listens on its own SO_REUSEPORT socket, so the kernel spreads connections evenly;
# on one shared socket, keep-alive connections pile onto whichever worker accepts fastest.
reuse_port = True
graceful_timeout = 20
timeout = 30
accesslog = "-" if os.environ.get("PRODUCER_ACCESS_LOG", "0") == "1" else None
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
