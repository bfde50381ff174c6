"""gunicorn settings: the producer's settings under gunicorn's names; threaded workers share one Kafka producer per
worker process.

A bad setting stops the server before any worker starts, with one line naming it (exit 2).
"""

import gc
import glob
import logging
import os
import shutil
import tempfile

from producer_service.config import settings_at_start
from shared_adapters.kafka_connection import check_accepted
from shared_domain.config import exit_2_on_bad_setting

# Read once, here in the master: every worker it forks serves with these.
with exit_2_on_bad_setting():
    settings, server = settings_at_start()
    check_accepted(settings.kafka)


def _metrics_directory(given: str | None) -> tuple[str, bool]:
    """Where every worker writes its counts for /metrics to add up, and whether this server made it.

    A given directory is made if missing and emptied, so counts start at zero with each server. Set
    before anything imports prometheus_client, which reads it from the environment, as the workers do.
    """
    if given is None:
        directory = tempfile.mkdtemp(prefix="producer-metrics-")
    else:
        directory = given
        os.makedirs(directory, exist_ok=True)
        for stale in glob.glob(os.path.join(directory, "*.db")):
            os.remove(stale)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    return directory, given is None


_metrics_dir, _own_metrics_dir = _metrics_directory(server.metrics_dir)

# Imported once the metrics directory is chosen (hence noqa: E402).
from producer_service.entrypoints.services import EXTENSION  # noqa: E402
from producer_service.entrypoints.stream_api import STREAM_PATH  # noqa: E402
from shared_adapters.http_worker import guarded_worker, stream_request_starts  # noqa: E402
from shared_adapters.logs import GunicornLogger, gunicorn_log_config  # noqa: E402

bind, workers, threads = server.bind, server.workers, server.threads
# gunicorn's own lines and the app's, one format (LOG_FORMAT: json, or text for people).
logconfig_dict = gunicorn_log_config(server.log_level, server.log_format)
logger_class = GunicornLogger
# A broker outage shows as 503s and in /ready; librdkafka would log every reconnect attempt.
logging.getLogger("librdkafka").setLevel(server.kafka_client_log_level)

# gthread, except that a thread only gets a request once it has arrived whole; gunicorn's own errors are JSON.
# Streams get threads of their own.
worker_class = guarded_worker(server.request_read_timeout_s, settings.max_body_bytes, server.stream_threads,
                              stream_request_starts("GET", [STREAM_PATH]))
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


def post_worker_init(worker):
    """Leave the loaded app out of the collector's full passes: they would walk every module's objects, per request."""
    gc.freeze()


def child_exit(server, worker):
    """Stop counting a dead worker's live gauges (its counters stay in the totals)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    """Remove the metrics directory this server made."""
    if _own_metrics_dir:
        shutil.rmtree(_metrics_dir, ignore_errors=True)


def worker_exit(server, worker):
    """Flush in-flight records before a worker exits (SIGTERM, restart)."""
    services = getattr(getattr(worker, "wsgi", None), "extensions", {}).get(EXTENSION)
    if services is not None:
        services.close()
