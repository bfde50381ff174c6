"""On the real local store, finding, updating or upserting one document by _id costs the same at 100,000 documents
as at 1,000: the store uses its _id index (infra/patches/ferretdb-sqlite-id-index.patch). A query a request
waits for is stopped by the store itself at its time limit, not left scanning, and answered as too costly."""

import random
import statistics
import time
from datetime import datetime, timezone

import pytest

from producer_service.application.ports import PageQuery
from producer_service.infrastructure.mongo_readers import MongoReader
from shared_adapters.mongo_client import connect
from shared_adapters.mongo_failed_messages import MongoFailureRepository
from shared_domain.availability import QueryTooCostly
from shared_domain.documents import message_view
from shared_domain.failed_messages import FAILED_MESSAGES_COLLECTION, Selection

SMALL, LARGE = 1_000, 100_000
SAMPLES = 40
# A lookup through the index costs the same at any size; a scan costs 100 times as much at 100 times the size.
ALLOWED_RATIO = 3.0
NOISE_S = 0.002
SENT = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _document(n: int) -> dict:
    """A message-shaped document."""
    return {"_id": f"clientA/m-{n:07d}", "messageId": f"m-{n:07d}", "from": "clientA", "to": "clientB",
            "message": f"text of message {n}", "sentAt": SENT, "storedAt": SENT,
            "source": {"topic": "client-messages", "partition": 0, "offset": n}}


@pytest.fixture(scope="module")
def collections(mongo):
    """A collection of SMALL and one of LARGE message-shaped documents on the real store (the large one where the
    operators' failed-message search looks, since any document shape makes it scan)."""
    client = connect(mongo.address, 60_000)
    database = client[f"lookups_{random.getrandbits(32):x}"]
    for collection, count in ((database.small, SMALL), (database[FAILED_MESSAGES_COLLECTION], LARGE)):
        for start in range(0, count, 5_000):
            collection.insert_many([_document(n) for n in range(start, min(start + 5_000, count))], ordered=False)
    yield {"small": (database.small, SMALL), "large": (database[FAILED_MESSAGES_COLLECTION], LARGE)}
    client.drop_database(database.name)
    client.close()


OPERATIONS = {
    "find_one": lambda collection, n: collection.find_one({"_id": f"clientA/m-{n:07d}"}),
    "update_one": lambda collection, n: collection.update_one({"_id": f"clientA/m-{n:07d}"}, {"$set": {"read": n}}),
    "upsert": lambda collection, n: collection.update_one({"_id": f"new/{n}-{random.getrandbits(40):x}"},
                                                          {"$set": {"n": n}}, upsert=True),
}


def _median_cost(operation, collection, count: int) -> float:
    """The median time of SAMPLES operations on random ids of the collection."""
    rng, costs = random.Random(count), []
    for _ in range(SAMPLES):
        n = rng.randrange(count)
        start = time.perf_counter()
        operation(collection, n)
        costs.append(time.perf_counter() - start)
    return statistics.median(costs)


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_an_id_operation_costs_the_same_in_a_collection_100_times_larger(collections, name):
    operation = OPERATIONS[name]
    small = _median_cost(operation, *collections["small"])
    large = _median_cost(operation, *collections["large"])
    assert large <= ALLOWED_RATIO * small + NOISE_S, (
        f"{name} by _id: {small * 1000:.2f} ms at {SMALL:,} documents, {large * 1000:.2f} ms at {LARGE:,}")





def test_the_store_itself_stops_a_page_query_at_its_time_limit(collections, mongo):
    large, _ = collections["large"]
    client = connect(mongo.address, 60_000, operation_timeout_ms=60_000)  # the client would wait a minute
    reader = MongoReader(client[large.database.name][large.name], "sentAt", message_view, time_limit_ms=200)
    try:
        with pytest.raises(QueryTooCostly, match=r"\(200 ms\)"):  # the store's own stop (code 50), not an outage
            reader.find(PageQuery(equals={"to": "nobody"}))  # a scan: seconds on this store
    finally:
        client.close()


def test_a_failed_message_search_or_count_the_store_cannot_serve_in_time_is_too_costly(collections, mongo):
    large, _ = collections["large"]
    client = connect(mongo.address, 60_000, operation_timeout_ms=60_000)
    repository = MongoFailureRepository(client[large.database.name], any_error_unavailable=True, time_limit_ms=200)
    try:
        with pytest.raises(QueryTooCostly):
            repository.select(Selection(equals={"errorType": "SchemaViolation"}, limit=10), records=False)
        with pytest.raises(QueryTooCostly):
            repository.count_by_error_type(Selection(equals={"to": "nobody"}))
    finally:
        client.close()
