"""pymongo adapter for operators: select failed records and change their status."""

import re

from pymongo import ASCENDING
from pymongo.database import Database

from shared_domain.documents import FAILED_MESSAGES_COLLECTION

from ..application.dlq_operations import Selection
from .mongo_store import transient_as_unavailable


class MongoFailureRepository:
    """The `failed_messages` collection, as operators see and change it; an outage raises StoreUnavailable."""

    def __init__(self, database: Database):
        self._failed = database[FAILED_MESSAGES_COLLECTION]

    def select(self, selection: Selection) -> list[dict]:
        """The selected documents, oldest failure first."""
        with transient_as_unavailable():
            cursor = self._failed.find(selection_filter(selection)).sort([("failedAt", ASCENDING), ("_id", ASCENDING)])
            return list(cursor.limit(selection.limit or 0))

    def change_status(self, failure_ids: list[str], expected: str, status: str, entry: dict) -> set[str]:
        """Set the status of those still `expected`, appending `entry` (with its operation id) to their history.

        One update for the whole list; only when someone else changed some of them meanwhile
        does it read them back to tell which ones this operation changed.
        """
        with transient_as_unavailable():
            result = self._failed.update_many(
                {"_id": {"$in": failure_ids}, "status": expected},
                {"$set": {"status": status}, "$push": {"history": entry}},
            )
            if result.modified_count == len(failure_ids):
                return set(failure_ids)
            documents = list(self._failed.find({"_id": {"$in": failure_ids}}, {"history": 1}))
        return {d["_id"] for d in documents if any(h.get("operation") == entry["operation"] for h in d.get("history", []))}


def selection_filter(selection: Selection) -> dict:
    """The MongoDB filter of a selection: its ids, else its filter."""
    if selection.ids:
        return {"_id": {"$in": list(selection.ids)}}
    query = dict(selection.equals)
    if selection.status is not None:
        query["status"] = selection.status
    if selection.reason_contains:
        query["reason"] = {"$regex": re.escape(selection.reason_contains), "$options": "i"}
    window = {}
    if selection.since is not None:
        window["$gte"] = selection.since
    if selection.until is not None:
        window["$lt"] = selection.until
    if window:
        query["failedAt"] = window
    return query
