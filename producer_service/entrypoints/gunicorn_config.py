"""gunicorn settings: threaded workers share one Kafka producer per worker process."""

import os

bind = os.environ.get("PRODUCER_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("PRODUCER_WORKERS", "2"))
worker_class = "gthread"
threads = int(os.environ.get("PRODUCER_THREADS", "8"))
graceful_timeout = 20
timeout = 30
accesslog = "-" if os.environ.get("PRODUCER_ACCESS_LOG", "0") == "1" else None
# Several producers may run on one machine (tests, local runs); none needs the control socket.
control_socket_disable = True
wsgi_app = "producer_service.entrypoints.app:create_app()"


def worker_exit(server, worker):
    """Flush in-flight records before a worker exits (SIGTERM, restart)."""
    services = getattr(getattr(worker, "wsgi", None), "extensions", {}).get("messaging")
    if services is not None:
        services.close()
