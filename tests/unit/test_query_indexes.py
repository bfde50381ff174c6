"""Every query the API makes on messages and failures is served by an index: its equality fields are an index's
prefix and its sort follows them, so MongoDB never sorts or scans a collection in memory for a page.

The queries are not listed by hand: the endpoints are called (every filter, both orders, a next page)
and each find() they make on the store is recorded and held against the indexes ensure_indexes makes.
"""

from datetime import datetime, timedelta, timezone

import mongomock
import pytest

from consumer_service.infrastructure.mongo_store import ensure_indexes
from shared_domain.conversation_views import VIEWS_COLLECTION
from shared_domain.documents import MESSAGES_COLLECTION, READ_MARKERS_COLLECTION
from shared_domain.failed_messages import FAILED_MESSAGES_COLLECTION
from producer_service.config import ProducerSettings
from shared_domain.failures import SourcePosition
from shared_domain.stored_events import stored_event
from tests.unit.conftest import bearer, make_app, store_as_the_consumer_does

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)

RANGE_OPERATORS = {"$gt", "$gte", "$lt", "$lte", "$nin", "$ne", "$exists", "$in"}
# A signed-in client's pages come from its message streams (below); with authentication off, everyone's from the history.
MESSAGE_PAGES = ["/messages", "/messages?order=desc", "/messages?with=clientB",
                 "/messages?with=clientB&order=desc&until=2027-01-01T00:00:00Z",
                 "/messages?to=clientB", "/messages?from=clientB", "/messages?since=2026-01-01T00:00:00Z",
                 "/messages?with=clientB&until=2027-01-01T00:00:00Z", "/messages?limit=1", "/messages?with=clientB&limit=1"]
FAILURE_PAGES = ["/failed-messages", "/failed-messages?status=failed", "/failed-messages?errorType=SchemaViolation",
                 "/failed-messages?to=clientB", "/failed-messages?from=clientA", "/failed-messages?client=clientB",
                 "/failed-messages?status=failed&since=2026-01-01T00:00:00Z", "/failed-messages?limit=1"]

OPERATOR_PAGES = ["/failed-messages", "/failed-messages?status=failed", "/failed-messages?errorType=SchemaViolation",
                  "/failed-messages?to=clientB", "/failed-messages?from=clientA", "/failed-messages?client=clientB",
                  "/failed-messages?status=replayed&since=2026-01-01T00:00:00Z", "/failed-messages?limit=1"]


@pytest.fixture
def recorded(monkeypatch):
    """Every (collection, filter, sort) a find() was asked for."""
    calls = []
    original_find = mongomock.collection.Collection.find

    def find(self, filter=None, *args, **kwargs):
        cursor = original_find(self, filter, *args, **kwargs)
        call = {"collection": self.name, "filter": filter or {}, "sort": None}
        calls.append(call)
        original_sort = cursor.sort

        def sort(key_or_list, direction=None):
            call["sort"] = key_or_list if direction is None else [(key_or_list, direction)]
            return original_sort(key_or_list, direction)
        cursor.sort = sort
        return cursor
    monkeypatch.setattr(mongomock.collection.Collection, "find", find)
    return calls


def _indexes(database) -> dict[str, list[list[tuple[str, int]]]]:
    """The keys of each index ensure_indexes makes, by collection."""
    ensure_indexes(database)
    return {name: [list(index["key"].items()) for index in database[name].list_indexes()]
            for name in (MESSAGES_COLLECTION, FAILED_MESSAGES_COLLECTION)}


def _branches(query: dict) -> list[tuple[set[str], set[str]]]:
    """Each $or branch of a filter as (equality fields, other fields); a filter without $or is one branch."""
    clauses = query.get("$and", [query])
    equal, other, alternatives = set(), set(), [{}]
    for clause in clauses:
        for field, condition in clause.items():
            if field == "$or":
                alternatives = [branch for branch in condition if not _only_about(branch, {"sentAt", "failedAt", "_id"})] or [{}]
            elif isinstance(condition, dict) and set(condition) & RANGE_OPERATORS:
                other.add(field)
            else:
                equal.add(field)
    return [(equal | set(_branches(branch)[0][0]) if branch else equal, other) for branch in alternatives]


def _only_about(clause: dict, fields: set[str]) -> bool:
    """Whether a clause (a cursor's 'after') filters on the sort fields alone."""
    return set(clause) <= fields


def served(index: list[tuple[str, int]], equal: set[str], sort: list[tuple[str, int]] | None) -> bool:
    """Whether the index's leading fields are some of the equality fields (one at least, when there are any),
    followed by the whole sort: the page is then read in order from a narrow range, never sorted in memory."""
    fields = [field for field, _ in index]
    used = 0
    while used < len(fields) and fields[used] in equal:
        used += 1
    if (equal and not used) or not sort:
        return used > 0
    rest = index[used:used + len(sort)]
    same = [(f, d) for f, d in sort] == rest
    reversed_ = [(f, -d) for f, d in sort] == rest
    return same or reversed_


EVERYONES_PAGES = ["/messages", "/messages?order=desc", "/messages?to=clientB", "/messages?from=clientB&order=desc",
                   "/messages?since=2026-01-01T00:00:00Z", "/messages?to=clientB&until=2027-01-01T00:00:00Z",
                   "/messages?limit=1"]


def test_every_page_of_messages_and_failures_is_served_by_an_index(app, operator_app, tokens, database, recorded,
                                                                  publisher, health, replayed):
    indexes = _indexes(database)
    client, console, ops = app.test_client(), operator_app.test_client(), bearer(tokens["ops"])
    open_client = make_app(publisher, database, health, replayed, ProducerSettings(auth_enabled=False)).test_client()
    for path in EVERYONES_PAGES:
        assert open_client.get(path).status_code == 200, path
    for path in FAILURE_PAGES:
        assert client.get(path, headers=ops).status_code == 200, path
    for path in OPERATOR_PAGES:
        assert console.get(path, headers=ops).status_code == 200, path
    pages = [call for call in recorded if call["collection"] in indexes and call["sort"]]
    assert len(pages) >= len(EVERYONES_PAGES) + len(FAILURE_PAGES) + len(OPERATOR_PAGES)
    unserved = [(call["collection"], call["filter"], call["sort"], equal) for call in pages
                for equal, _ in _branches(call["filter"])
                if not any(served(index, equal, call["sort"]) for index in indexes[call["collection"]])]
    assert not unserved, "queries no index serves:\n" + "\n".join(map(str, unserved))


def test_the_checker_refuses_a_query_whose_sort_no_index_follows():
    index = [("to", 1), ("sentAt", 1), ("_id", 1)]
    assert served(index, {"to"}, [("sentAt", 1), ("_id", 1)])
    assert served(index, {"to"}, [("sentAt", -1), ("_id", -1)])
    assert not served(index, {"from"}, [("sentAt", 1), ("_id", 1)])
    assert not served(index, {"to"}, [("storedAt", 1)])
    assert not served(index, {"to"}, [("sentAt", 1), ("_id", -1)])
    assert not served([("sentAt", 1), ("_id", 1)], {"conversation"}, [("sentAt", 1), ("_id", 1)]), "a whole-collection walk"


def test_every_page_of_a_signed_in_client_and_the_conversation_list_are_lookups_by_id(app, tokens, recorded, database):
    store_as_the_consumer_does(database, [stored_event(f"m{n}", "clientA", "clientB", "hi", T0 + timedelta(seconds=n),
                                                       SourcePosition("client-messages", 0, n)) for n in range(5)])
    client = app.test_client()
    for path in [*MESSAGE_PAGES, "/conversations"]:
        recorded.clear()
        assert client.get(path, headers=bearer(tokens["clientA"])).status_code == 200, path
        reads = [(call["collection"], call["filter"]) for call in recorded
                 if call["collection"] in (MESSAGES_COLLECTION, VIEWS_COLLECTION, READ_MARKERS_COLLECTION)]
        assert reads and all(set(query) == {"_id"} and isinstance(query["_id"], str) for _, query in reads), (path, reads)
