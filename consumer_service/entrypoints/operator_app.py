"""The operator server's Flask app: the dead-letter HTTP API, sign-in, and the console page."""

from flask import Flask

from shared_adapters.access import Access, RateLimiter, session_blueprint
from shared_adapters.flask_app import api_app
from shared_adapters.metrics import metrics_blueprint
from shared_adapters.openapi import document_blueprint
from shared_domain.identity import METRICS, OPERATOR
from shared_domain.session import Sessions

from ..application.dlq_operations import Operations
from ..config import OperatorSettings
from . import console_page, operator_api
from .operator_openapi import operator_document

SESSION_COOKIE = "console_session"


def create_operator_app(settings: OperatorSettings, operations: Operations, identities, sessions: Sessions,
                        limiter: RateLimiter) -> Flask:
    """Build the operator app on the given dead-letter operations and access adapters."""
    access = Access(identities, sessions, limiter, SESSION_COOKIE, enabled=settings.auth_enabled,
                    operator_token=settings.operator_token, retry_after_s=settings.retry_after_s,
                    auth_failure_limit=settings.auth_failure_limit, session_ttl_s=settings.session_ttl_s,
                    cookie_secure=settings.session_cookie_secure)
    app = api_app(__name__, access, settings.max_body_bytes)
    app.extensions[operator_api.EXTENSION] = operations
    for blueprint in (operator_api.bp, session_blueprint(OPERATOR), console_page.bp,
                      metrics_blueprint(OPERATOR, METRICS), document_blueprint(operator_document)):
        app.register_blueprint(blueprint)

    @app.get("/health")
    def health():
        """The operator server is up."""
        return {"status": "ok"}

    return app
