"""Flask application factory of the producer service."""

import logging
import sys

from flask import Flask, Response

from shared_domain.config import ConfigError

from ..config import ProducerSettings, load_settings
from . import clients_api, errors, health_api, operator_api, query_api, send_api
from .services import EXTENSION, Services


def create_app(settings: ProducerSettings | None = None, services: Services | None = None) -> Flask:
    """Build the app; with no `services`, wire the real Kafka and MongoDB adapters."""
    if settings is None:
        settings = _settings_or_exit()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False
    # '//messages' is a path of its own (404), not a redirect to '/messages'.
    app.url_map.merge_slashes = False
    if services is None:
        from .bootstrap import real_services

        services = real_services(settings)
    app.extensions[EXTENSION] = services
    errors.init_app(app)
    app.after_request(_protective_headers)
    for blueprint in (send_api.bp, query_api.bp, health_api.bp, operator_api.bp, clients_api.bp):
        app.register_blueprint(blueprint)
    if not settings.auth_enabled:
        _warn_open()
    return app


def _warn_open() -> None:
    """Say loudly that anyone may send as anyone and read everything."""
    warning = ("AUTHENTICATION IS OFF (AUTH_ENABLED=false): anyone who reaches this service can send as any "
               "client, read every message and act as an operator; only for trusted networks")
    logging.getLogger(__name__).warning("%s", warning)
    print(f"WARNING: {warning}", file=sys.stderr, flush=True)


def _protective_headers(response: Response) -> Response:
    """Answers are not to be sniffed into another type, framed, or cached by anyone on the way."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
    return response


def _settings_or_exit() -> ProducerSettings:
    """Load settings from the environment or exit 2 with one line naming the bad variable."""
    try:
        return load_settings()
    except ConfigError as error:
        logging.getLogger(__name__).error("%s", error)
        print(str(error), file=sys.stderr)
        sys.exit(2)
