"""Fixed-window rate limits counted in MongoDB, so every worker process shares the counts."""

import math
import time
from collections.abc import Callable
from datetime import timedelta

from pymongo import ReturnDocument
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError, OperationFailure, PyMongoError

from shared_domain.clock import utc_now

from .mongo_readers import StoreUnavailable

COLLECTION = "rate_limits"


class MongoRateLimiter:
    """Counts hits per key and window in one document each, keyed by `_id` (the one query every store serves by key)."""

    def __init__(self, database: Database, clock: Callable[[], float] = time.time):
        self._counts = database[COLLECTION]
        self._clock = clock
        self._indexed = False
        self._clear_finished = False

    def hit(self, key: str, limit: int, window_s: int) -> float | None:
        """Count one hit; None while within `limit` per `window_s`, else the seconds until the window ends."""
        try:
            return self._hit(key, limit, window_s)
        except PyMongoError as error:
            raise StoreUnavailable(f"{type(error).__name__}: {error}") from None

    def _hit(self, key: str, limit: int, window_s: int) -> float | None:
        """Count one hit in the current window's document."""
        if not self._indexed:
            try:  # MongoDB then drops finished windows by itself
                self._counts.create_index("expiresAt", expireAfterSeconds=0)
            except OperationFailure:  # FerretDB v1 has no TTL indexes: new windows clear finished ones instead
                self._clear_finished = True
            self._indexed = True
        now = self._clock()
        window = math.floor(now / window_s)
        update = {"$inc": {"count": 1}, "$setOnInsert": {"expiresAt": utc_now() + timedelta(seconds=2 * window_s)}}
        for attempt in (1, 2):
            try:
                document = self._counts.find_one_and_update({"_id": f"{key}@{window}"}, update, upsert=True,
                                                            return_document=ReturnDocument.AFTER)
                break
            except DuplicateKeyError:  # another process created the window's document first: count again
                if attempt == 2:
                    raise
        if document["count"] == 1 and self._clear_finished:
            self._counts.delete_many({"expiresAt": {"$lt": utc_now()}})
        if document["count"] <= limit:
            return None
        return max((window + 1) * window_s - now, 0.001)
