"""pymongo adapter of the failed messages operators read and change, in both services: one filter per Selection."""

import re

from pymongo.database import Database

from shared_domain.failed_messages import FAILED_MESSAGES_COLLECTION, FAILED_RECORDS_COLLECTION, ORDER, Selection

from .mongo_client import any_error_as_unavailable, stopped_at_time_limit, transient_as_unavailable


class MongoFailureRepository:
    """Failed records as operators see and change them; an outage raises StoreUnavailable.

    With `any_error_unavailable`, every store error does (the producer's listing has always
    answered those with 503), not only those that may go away by themselves. With `time_limit_ms`,
    the store stops a listing's or a count's query after that long, which raises QueryTooCostly.
    """

    def __init__(self, database: Database, any_error_unavailable: bool = False, time_limit_ms: int = 0):
        self._time_limit = time_limit_ms or None
        self._failed = database[FAILED_MESSAGES_COLLECTION]
        self._records = database[FAILED_RECORDS_COLLECTION]
        self._unavailable = any_error_as_unavailable if any_error_unavailable else transient_as_unavailable

    def select(self, selection: Selection, records: bool = True) -> list[dict]:
        """The selected failures in order; with `records`, each joined with its raw record."""
        with self._unavailable():
            if selection.ids:
                summaries = sorted(self._by_ids(self._failed, selection.ids), key=lambda d: (d["failedAt"], d["_id"]))
                summaries = summaries[:selection.limit or None]
            else:
                direction = -1 if selection.newest_first else 1
                with stopped_at_time_limit(self._time_limit):
                    cursor = self._failed.find(selection_filter(selection)).sort([(f, d * direction) for f, d in ORDER])
                    summaries = list(cursor.max_time_ms(self._time_limit).limit(selection.limit or 0))
            if not records:
                return summaries
            found = {record["_id"]: record for record in self._by_ids(self._records, [s["_id"] for s in summaries])}
        # Failures stored before records were kept apart carry their record inline.
        return [{**summary, **found.get(summary["_id"], {})} for summary in summaries]

    @staticmethod
    def _by_ids(collection, ids) -> list[dict]:
        """The documents with these ids, read one by one.

        An `_id` equality is the one query every MongoDB-protocol store answers from its key
        (FerretDB's SQLite backend scans the whole collection for `$in`).
        """
        documents = (collection.find_one({"_id": failure_id}) for failure_id in dict.fromkeys(ids))
        return [document for document in documents if document is not None]

    def count_by_error_type(self, selection: Selection) -> dict[str, int]:
        """How many failures a selection by filter matches, by error type, most frequent first."""
        pipeline = [{"$match": selection_filter(selection)}, {"$group": {"_id": "$errorType", "count": {"$sum": 1}}}]
        limit = {"maxTimeMS": self._time_limit} if self._time_limit else {}
        with self._unavailable(), stopped_at_time_limit(self._time_limit):
            counts = {group["_id"]: group["count"] for group in self._failed.aggregate(pipeline, **limit)}
        return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))

    def change_status(self, failure_ids: list[str], expected: str, status: str, entry: dict) -> set[str]:
        """Set the status of those still `expected`, appending `entry` (with its operation id) to their history.

        One update for the whole list; only when someone else changed some of them meanwhile
        does it read them back to tell which ones this operation changed.
        """
        with self._unavailable():
            result = self._failed.update_many(
                {"_id": {"$in": failure_ids}, "status": expected},
                {"$set": {"status": status}, "$push": {"history": entry}},
            )
            if result.modified_count == len(failure_ids):
                return set(failure_ids)
            documents = list(self._failed.find({"_id": {"$in": failure_ids}}, {"history": 1}))
        return {d["_id"] for d in documents if any(h.get("operation") == entry["operation"] for h in d.get("history", []))}


def selection_filter(selection: Selection) -> dict:
    """The MongoDB filter of a selection by filter (a selection by ids is read one `_id` at a time)."""
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
    if selection.after is not None:
        moment, last_id = selection.after
        beyond = "$lt" if selection.newest_first else "$gt"
        query["$or"] = [{"failedAt": {beyond: moment}}, {"failedAt": moment, "_id": {beyond: last_id}}]
    return query


