"""pymongo adapter for operators: select failed records and change their status."""

import re

from pymongo import ASCENDING
from pymongo.database import Database

from shared_domain.documents import FAILED_MESSAGES_COLLECTION

from ..application.dlq_operations import Selection


class MongoFailureRepository:
    """The `failed_messages` collection, as operators see and change it."""

    def __init__(self, database: Database):
        self._failed = database[FAILED_MESSAGES_COLLECTION]

    def select(self, selection: Selection) -> list[dict]:
        """The selected documents, oldest failure first."""
        cursor = self._failed.find(selection_filter(selection)).sort([("failedAt", ASCENDING), ("_id", ASCENDING)])
        if selection.limit:
            cursor = cursor.limit(selection.limit)
        return list(cursor)

    def get(self, failure_id: str) -> dict | None:
        """One document by id."""
        return self._failed.find_one({"_id": failure_id})

    def change_status(self, failure_id: str, expected: str, status: str, entry: dict) -> bool:
        """Set the status if it is still `expected`, appending `entry` to the history."""
        result = self._failed.update_one(
            {"_id": failure_id, "status": expected},
            {"$set": {"status": status}, "$push": {"history": entry}},
        )
        return result.modified_count == 1


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
