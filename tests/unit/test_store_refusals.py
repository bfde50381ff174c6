"""A store's refusal of a write is a refusal of the document only when its code says so; any other is an outage."""

import pytest
from pymongo.errors import BulkWriteError, OperationFailure

from consumer_service.application.errors import StoreUnavailable
from consumer_service.infrastructure.mongo_store import DUPLICATE_KEY, _insert_ignoring_duplicates

DOCUMENTS = [{"_id": f"m{n}"} for n in range(3)]


class Refusing:
    """A collection whose every insert_many fails with one error."""

    def __init__(self, error: Exception):
        self.error = error

    def insert_many(self, documents, ordered):
        raise self.error


def bulk_error(*codes: int) -> BulkWriteError:
    """A bulk write error with one write error per code, on places 0, 1, ..."""
    errors = [{"index": place, "code": code, "errmsg": f"code {code}"} for place, code in enumerate(codes)]
    return BulkWriteError({"writeErrors": errors, "writeConcernErrors": [], "nInserted": 0})


def test_a_document_the_store_refuses_for_what_it_holds_is_refused_and_an_existing_one_is_present():
    inserted = _insert_ignoring_duplicates(Refusing(bulk_error(121, DUPLICATE_KEY)), DOCUMENTS)
    assert inserted.refused == {0: "code 121"} and inserted.present == [1]


@pytest.mark.parametrize("code", [1, 11600, 91, 24, None])
def test_a_write_refused_for_any_other_reason_is_the_store_unavailable_not_the_document_refused(code):
    with pytest.raises(StoreUnavailable):
        _insert_ignoring_duplicates(Refusing(bulk_error(DUPLICATE_KEY, code)), DOCUMENTS)


def test_a_whole_insert_refused_without_a_document_fault_is_the_store_unavailable():
    with pytest.raises(StoreUnavailable, match="database is locked"):
        _insert_ignoring_duplicates(Refusing(OperationFailure("database is locked", code=1)), DOCUMENTS)


def test_a_whole_insert_refused_for_a_document_fault_refuses_every_document():
    inserted = _insert_ignoring_duplicates(Refusing(OperationFailure("too large", code=10334)), DOCUMENTS)
    assert set(inserted.refused) == {0, 1, 2}
