"""On the real local store, finding, updating or upserting one document by _id costs the same at 100,000 documents
as at 1,000: the store uses its _id index (infra/patches/ferretdb-sqlite-id-index.patch). A query a request
gives up on is stopped by the store itself, not left scanning."""

import random
import statistics
import time
from datetime import datetime, timezone

import pytest
from pymongo.errors import ExecutionTimeout, PyMongoError

from shared_adapters.mongo_client import connect, connect_for_requests

SMALL, LARGE = 1_000, 100_000
SAMPLES = 40
ATTEMPTS = 10  # scans given up on, until the store's own timeout answers first
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
    """A collection of SMALL and one of LARGE message-shaped documents on the real store."""
    client = connect(mongo.address, 60_000)
    database = client[f"lookups_{random.getrandbits(32):x}"]
    for collection, count in ((database.small, SMALL), (database.large, LARGE)):
        for start in range(0, count, 5_000):
            collection.insert_many([_document(n) for n in range(start, min(start + 5_000, count))], ordered=False)
    yield {"small": (database.small, SMALL), "large": (database.large, LARGE)}
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




def test_the_store_itself_stops_a_query_a_request_gave_up_on(collections, mongo):
    large, _ = collections["large"]
    client = connect_for_requests(mongo.address, 100, operation_timeout_ms=300)
    scan = client[large.database.name][large.name].find
    try:
        client.admin.command("ping")
        stopped_by = []
        # The client stops waiting as the store's maxTimeMS runs out, so either may answer first; the store's own
        # error (code 50) shows it stopped the scan. A client without maxTimeMS only ever raises NetworkTimeout.
        while len(stopped_by) < ATTEMPTS and ExecutionTimeout not in stopped_by:
            with pytest.raises(PyMongoError) as raised:
                list(scan({"to": "nobody"}))  # a scan: seconds on this store
            assert raised.value.timeout, repr(raised.value)
            stopped_by.append(type(raised.value))
        assert ExecutionTimeout in stopped_by, f"given up on by the client alone, {len(stopped_by)} times"
    finally:
        client.close()
