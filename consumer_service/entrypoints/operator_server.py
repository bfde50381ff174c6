"""`consumer-service operator`: the dead-letter API and console under gunicorn, on OPERATOR_BIND."""

import logging
from contextlib import ExitStack

from gunicorn.app.base import BaseApplication

from shared_adapters.http_worker import guarded_worker
from shared_adapters.logs import GunicornLogger, gunicorn_log_config
from shared_adapters.mongo_client import QUERY_TIME_LIMIT_MS, connect
from shared_adapters.mongo_identities import MongoIdentityRegistry
from shared_adapters.mongo_rate_limits import MongoRateLimiter
from shared_adapters.mongo_sessions import MongoSessions

from ..config import OperatorSettings
from .bootstrap import operations
from .operator_app import create_operator_app

log = logging.getLogger(__name__)
CLOSE = "close"
READ_TIMEOUT_S = 10.0


class OperatorServer(BaseApplication):
    """gunicorn running the operator app: one threaded worker, restarted by the master if it dies."""

    def __init__(self, settings: OperatorSettings):
        self.settings = settings
        super().__init__()

    def load_config(self) -> None:
        """gunicorn settings from the operator settings."""
        config = {
            "bind": [self.settings.bind],
            "workers": 1,
            "threads": self.settings.threads,
            "worker_class": guarded_worker(READ_TIMEOUT_S, self.settings.max_body_bytes, stream_threads=1),
            # A replay of many records through FerretDB may take a while; the master must not kill it.
            "timeout": 300,
            "graceful_timeout": 20,
            "control_socket_disable": True,
            "worker_exit": _close_worker,
            "logger_class": GunicornLogger,
            "logconfig_dict": gunicorn_log_config(logging.getLevelName(logging.getLogger().level), self.settings.log_format),
        }
        for name, value in config.items():
            self.cfg.set(name, value)

    def load(self):
        """The app, with its own store client and replay producer (made in the worker, after the fork)."""
        resources = ExitStack()  # closed by worker_exit
        ops = resources.enter_context(operations(self.settings.consumer, operator="operator-console",
                                                         query_time_limit_ms=QUERY_TIME_LIMIT_MS))
        mongo = connect(self.settings.consumer.mongodb_uri, self.settings.consumer.mongodb_timeout_ms)
        resources.callback(mongo.close)
        database = mongo[self.settings.consumer.mongodb_database]
        identities = MongoIdentityRegistry(database)
        identities.warm()
        app = create_operator_app(self.settings, ops, identities, MongoSessions(database), MongoRateLimiter(database))
        app.extensions[CLOSE] = resources.close
        log.info("operator API and console on http://%s", self.settings.bind)
        return app


def _close_worker(_server, worker) -> None:
    """Flush replays in flight and close the store client when a worker exits."""
    close = getattr(getattr(worker, "wsgi", None), "extensions", {}).get(CLOSE)
    if close is not None:
        close()
