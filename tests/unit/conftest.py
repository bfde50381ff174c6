"""Fixtures for unit tests: the Flask app wired with a fake publisher and mongomock readers."""

from concurrent.futures import Future

import mongomock
import pytest

from consumer_service.application.dlq_operations import Operations, PublishFailed
from consumer_service.config import OperatorSettings
from consumer_service.config import load_settings as load_consumer_settings
from consumer_service.entrypoints.operator_app import create_operator_app
from consumer_service.infrastructure.mongo_views import MongoConversationViews
from producer_service.application.failed_messages import FailurePages
from producer_service.application.live import Hub
from producer_service.application.ports import BrokerUnavailable, Receipt
from producer_service.config import ProducerSettings
from producer_service.entrypoints.app import create_app
from producer_service.entrypoints.services import Live, Services
from producer_service.infrastructure.mongo_readers import (MongoConversations, MongoHistory, MongoReader, MongoViews,
                                                      PagedMessages)
from shared_adapters.mongo_failed_messages import MongoFailureRepository
from shared_adapters.mongo_identities import MongoIdentityRegistry
from shared_adapters.mongo_rate_limits import MongoRateLimiter
from shared_adapters.mongo_sessions import MongoSessions
from shared_domain.documents import message_document, message_view
from shared_domain.identity import CLIENT, OPERATOR


class FakePublisher:
    """Records published messages; can be told the broker is down."""

    def __init__(self):
        self.published = []
        self.down = False

    def publish(self, messages, trace_id=None):
        outcomes = Future()
        if self.down:
            outcomes.set_result([BrokerUnavailable("Local: Message timed out") for _ in messages])
            return outcomes
        self.published += messages
        outcomes.set_result([Receipt(partition=0, offset=len(self.published) - len(messages) + n)
                             for n in range(len(messages))])
        return outcomes


@pytest.fixture
def database():
    """A fresh mongomock database."""
    return mongomock.MongoClient(tz_aware=True)["messaging"]


@pytest.fixture
def publisher():
    """The fake publisher the app sends to."""
    return FakePublisher()


@pytest.fixture
def health():
    """Dependency states the readiness endpoint reports."""
    return {"kafka": True, "mongodb": True}


class FakeRecordPublisher:
    """Collects replayed records; can be told the broker is down."""

    def __init__(self):
        self.records = []
        self.down = False

    def publish_all(self, records):
        if self.down:
            raise PublishFailed("broker down")
        self.records += records


@pytest.fixture
def replayed():
    """The fake publisher operator replays go to."""
    return FakeRecordPublisher()


@pytest.fixture
def operator_token():
    """The operator token the app is configured with (None: operator endpoints off)."""
    return "s3cret-operator-token-of-32-chars-or-more"


@pytest.fixture
def settings(operator_token):
    """Small limits, so tests reach them quickly."""
    return ProducerSettings(max_body_bytes=2048, max_message_length=100, page_size_default=2, page_size_max=5,
                            operator_token=operator_token, send_rate_limit=1000, auth_failure_limit=1000)


@pytest.fixture
def tokens(database):
    """Registered clients clientA, clientB, clientC and operator ops, with one token each: {name: token}."""
    registry = MongoIdentityRegistry(database)
    issued = {}
    for role, name in [(CLIENT, "clientA"), (CLIENT, "clientB"), (CLIENT, "clientC"), (OPERATOR, "ops")]:
        registry.add(role, name)
        issued[name] = registry.issue_token(role, name)[1]
    return issued


@pytest.fixture
def app(publisher, database, health, replayed, settings, tokens):
    """The producer app wired with fakes, mongomock readers and a mongomock identity registry."""
    return make_app(publisher, database, health, replayed, settings)


def make_app(publisher, database, health, replayed, settings):
    """Wire the producer app with fakes and mongomock."""
    views = MongoViews(database.conversation_views, lambda: 3)
    services = Services(
        settings=settings,
        publisher=publisher,
        messages=PagedMessages(MongoReader(database.messages, "sentAt", message_view), database.conversation_views,
                               lambda: 3),
        failures=FailurePages(MongoFailureRepository(database, any_error_unavailable=True)),
        checks={name: (lambda name=name: health[name]) for name in health},
        identities=MongoIdentityRegistry(database),
        limiter=MongoRateLimiter(database),
        sessions=MongoSessions(database),
        conversations=MongoConversations(views, database.read_markers),
        live=Live(Hub(settings.stream_limit, settings.stream_queue), MongoHistory(database.messages, views), lambda: None),
    )
    return create_app(settings, services)


def store_as_the_consumer_does(database, events) -> None:
    """Store stored events' messages, then project them into the views, as the consumer and its projector do."""
    for event in events:
        database.messages.insert_one(message_document(event.message, event.source, event.message.sent_at))
    MongoConversationViews(database).apply([(event.source.partition, event) for event in events])


def bearer(token: str) -> dict:
    """The Authorization header carrying a token."""
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def client(app, tokens):
    """A test client of the app, signed in as clientA unless a request says otherwise."""
    test_client = app.test_client()
    test_client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {tokens['clientA']}"
    return test_client


@pytest.fixture
def operator_app(database, replayed, operator_token, tokens):
    """The operator server's app on mongomock, replaying into a fake publisher (loop guard at 3 replays)."""
    settings = OperatorSettings(consumer=load_consumer_settings("*", {}), operator_token=operator_token,
                                auth_failure_limit=1000)
    operations = Operations(MongoFailureRepository(database), replayed, operator="operator-api", replay_cap=3)
    return create_operator_app(settings, operations, MongoIdentityRegistry(database), MongoSessions(database),
                               MongoRateLimiter(database))
