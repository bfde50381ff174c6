"""On the real local store, pages read from the message streams equal the same pages read from the history, and a
stream's resume from the views' logs finds what the history holds beyond its position, after the streams were split
into many leaves and nodes, and the logs into many sets, by batches redelivered and interleaved."""

import random
from datetime import timedelta
from unittest.mock import patch

import pytest

from consumer_service.infrastructure.mongo_views import MongoConversationViews
from producer_service.application.ports import PageQuery
from producer_service.application.live import Position
from producer_service.infrastructure.mongo_readers import MongoHistory, MongoReader, MongoViews, PagedMessages
from shared_adapters.mongo_client import connect
from shared_adapters.mongo_packed import unpack
from shared_domain import conversation_views
from shared_domain.conversation_views import VIEWS_COLLECTION
from shared_domain.documents import MESSAGES_COLLECTION, message_document, message_view
from shared_domain.message import conversation_key
from tests.unit.test_message_pages import CLIENTS, PARTITIONS, T0, every_page, events_of

MESSAGES = 300


@pytest.fixture
def database(mongo):
    """A database of its own on the real store."""
    client = connect(mongo.address, 60_000)
    database = client[f"pages_{random.getrandbits(32):x}"]
    yield database
    client.drop_database(database.name)
    client.close()


def test_pages_from_the_streams_on_the_real_store_equal_the_history_pages(database):
    rng = random.Random(20261206)
    drawn = [(rng.choice(CLIENTS), rng.choice(CLIENTS), T0 + timedelta(milliseconds=rng.randrange(150),
                                                                      microseconds=rng.randrange(1000)))
             for _ in range(MESSAGES)]
    events = events_of(drawn)
    database[MESSAGES_COLLECTION].insert_many([message_document(event.message, event.source, event.message.sent_at)
                                               for _, event in events])
    views = MongoConversationViews(database, leaf=4, node=3)
    start = 0
    with patch.object(conversation_views, "ARRIVALS", 4):
        while start < len(events):
            end = min(len(events), start + rng.randint(1, 40))
            views.apply(events[start:end])
            if rng.random() < 0.3:  # read again after a rebalance: from an earlier batch, by a projector that forgot
                views.forget()
                views.apply(events[rng.randrange(end):end])
            start = end
    leaves = sum("messages" in unpack(doc) for doc in database[VIEWS_COLLECTION].find({}))
    assert leaves > MESSAGES * 3 // 4, f"the streams were split into {leaves} leaves only"
    history = MongoReader(database[MESSAGES_COLLECTION], "sentAt", message_view)
    pages = PagedMessages(history, database[VIEWS_COLLECTION], lambda: PARTITIONS)
    moments = [T0 + timedelta(milliseconds=n) for n in (20, 75, 130)]
    for caller in CLIENTS:
        for partner in (None, caller, CLIENTS[(CLIENTS.index(caller) + 1) % len(CLIENTS)]):
            any_of = ({"conversation": conversation_key(caller, partner)},) if partner else (
                {"from": caller}, {"to": caller})
            for newest_first in (False, True):
                for equals, since, until in (({}, None, None), ({"to": caller}, moments[0], None),
                                             ({"from": caller}, None, moments[2]), ({}, moments[0], moments[1])):
                    query = PageQuery(equals=equals, since=since, until=until, limit=25, any_of=any_of,
                                      newest_first=newest_first)
                    assert every_page(pages, query) == every_page(history, query), query
    resumes = MongoHistory(database[MESSAGES_COLLECTION], MongoViews(database[VIEWS_COLLECTION], lambda: PARTITIONS))
    for caller in CLIENTS:
        mine = [event for _, event in events if caller in (event.message.sender, event.message.recipient)]
        for delivered in (0, len(mine) // 2, len(mine) - 3):
            position = Position()
            for event in mine[:delivered]:
                position.advance(event)
            missed, expected = resumes.missed(caller, position, 1000), mine[delivered:]
            assert sorted(event.message.message_id for event in missed) == sorted(
                event.message.message_id for event in expected), (caller, delivered)
            assert [event.source.offset for event in missed] == sorted(event.source.offset for event in expected)
