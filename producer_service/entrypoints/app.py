"""Flask application factory of the producer service."""

from flask import Flask

from shared_adapters.access import Access, session_blueprint
from shared_adapters.flask_app import api_app
from shared_adapters.http_worker import END_STREAMS
from shared_adapters.metrics import metrics_blueprint
from shared_adapters.openapi import document_blueprint
from shared_domain.config import exit_2_on_bad_setting
from shared_domain.identity import CLIENT, METRICS, OPERATOR

from ..config import ProducerSettings, settings_at_start
from . import chat_page, clients_api, failures_api, health_api, query_api, send_api, stream_api
from .openapi import producer_document
from .quick_send import QuickSend
from .services import EXTENSION, Services

SESSION_COOKIE = "chat_session"


def create_app(settings: ProducerSettings | None = None, services: Services | None = None) -> Flask:
    """Build the app; with no `settings`, those read at start; with no `services`, the real Kafka and MongoDB adapters."""
    if settings is None:
        with exit_2_on_bad_setting():
            settings = settings_at_start()[0]
    if services is None:
        from .bootstrap import real_services

        services = real_services(settings)
    access = Access(services.identities, services.sessions, services.limiter, SESSION_COOKIE,
                    enabled=settings.auth_enabled, operator_token=settings.operator_token,
                    retry_after_s=settings.retry_after_s, auth_failure_limit=settings.auth_failure_limit,
                    session_ttl_s=settings.session_ttl_s, cookie_secure=settings.session_cookie_secure)
    app = api_app(__name__, access, settings.max_body_bytes)
    app.extensions[EXTENSION] = services
    if services.live is not None:
        app.extensions[END_STREAMS] = services.live.hub.close
    for blueprint in (send_api.bp, query_api.bp, stream_api.bp, health_api.bp, failures_api.bp, clients_api.bp,
                      session_blueprint(CLIENT), chat_page.bp, metrics_blueprint(OPERATOR, METRICS),
                      document_blueprint(lambda: producer_document(settings))):
        app.register_blueprint(blueprint)
    app.wsgi_app = QuickSend(app.wsgi_app, services, access)
    return app
