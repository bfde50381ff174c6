"""Flask application factory of the producer service."""

import logging
import sys

from flask import Flask, Response

from shared_domain.config import ConfigError

from ..config import ProducerSettings, load_settings
from . import clients_api, errors, health_api, operator_api, query_api, send_api, stream_api
from .services import EXTENSION, Services

# Answers are not to be sniffed into another type, framed, or cached by anyone on the way.
PROTECTIVE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}


class ApiFlask(Flask):
    """Flask, except that its automatic OPTIONS answer has no content instead of an empty HTML page."""

    def make_default_options_response(self) -> Response:
        """204 with the Allow header."""
        response = super().make_default_options_response()
        response.status_code = 204
        del response.headers["Content-Type"]
        return response


def create_app(settings: ProducerSettings | None = None, services: Services | None = None) -> Flask:
    """Build the app; with no `services`, wire the real Kafka and MongoDB adapters."""
    if settings is None:
        settings = _settings_or_exit()
    app = ApiFlask(__name__)
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
    for blueprint in (send_api.bp, query_api.bp, stream_api.bp, health_api.bp, operator_api.bp, clients_api.bp):
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
    """Add the PROTECTIVE_HEADERS a view did not set itself."""
    for name, value in PROTECTIVE_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def _settings_or_exit() -> ProducerSettings:
    """Load settings from the environment or exit 2 with one line naming the bad variable."""
    try:
        return load_settings()
    except ConfigError as error:
        logging.getLogger(__name__).error("%s", error)
        print(str(error), file=sys.stderr)
        sys.exit(2)
