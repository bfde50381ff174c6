"""Fixed-window rate limits counted in MongoDB, so every worker process shares the counts."""

import math
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from pymongo.database import Database
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure, PyMongoError

from shared_domain.clock import utc_now

from .mongo_readers import StoreUnavailable

COLLECTION = "rate_limits"
DUPLICATE_KEY = 11000


class MongoRateLimiter:
    """Each allowed hit claims one of the window's `limit` numbered slots: a document under a unique `_id`.

    Inserting a new `_id` is the one write every MongoDB-protocol store makes atomic: FerretDB v1
    loses concurrent `$inc`s (160 concurrent increments of one counter left it at 18). Each process
    remembers how far it got in a window, so a hit usually costs one insert and a spent window none.
    """

    def __init__(self, database: Database, clock: Callable[[], float] = time.time):
        self._slots = database[COLLECTION]
        self._clock = clock
        self._lock = threading.Lock()
        self._next: dict[tuple[str, int], int] = {}  # (key, window) -> the first slot not known to be taken
        self._expiry_indexed: bool | None = None
        self._swept_at = 0.0

    def hit(self, key: str, limit: int, window_s: int, cost: int = 1) -> float | None:
        """Claim `cost` hits; None while within `limit` per `window_s`, else the seconds until the window ends."""
        try:
            return self._hit(key, limit, window_s, cost)
        except PyMongoError as error:
            raise StoreUnavailable(f"{type(error).__name__}: {error}") from None

    def _hit(self, key: str, limit: int, window_s: int, cost: int) -> float | None:
        """Claim slots from the first one this process does not know to be taken."""
        now = self._clock()
        window = math.floor(now / window_s)
        self._housekeeping(window, window_s)
        expires = utc_now() + timedelta(seconds=2 * window_s)
        claimed = 0
        with self._lock:
            index = self._next.get((key, window), 0)
        while claimed < cost and index < limit:
            wanted = range(index, min(limit, index + cost - claimed))
            claimed += self._insert([{"_id": f"{key}@{window}#{n}", "expiresAt": expires} for n in wanted])
            index = wanted.stop
        with self._lock:
            self._next[(key, window)] = max(index, self._next.get((key, window), 0))
        return None if claimed == cost else max((window + 1) * window_s - now, 0.001)

    def _insert(self, slots: list[dict]) -> int:
        """Insert the slots not taken yet; return how many this call took."""
        try:
            self._slots.insert_many(slots, ordered=False)
        except BulkWriteError as error:
            errors = error.details.get("writeErrors", [])
            if any(item.get("code") != DUPLICATE_KEY for item in errors):
                raise
            return len(slots) - len(errors)
        except DuplicateKeyError:
            return 0
        return len(slots)

    def _housekeeping(self, window: int, window_s: int) -> None:
        """Forget finished windows; have the store drop them (a TTL index, or a sweep a minute where there is none)."""
        with self._lock:
            if any(seen < window for _, seen in self._next):
                self._next = {entry: index for entry, index in self._next.items() if entry[1] >= window}
            if self._expiry_indexed is None:
                try:
                    self._slots.create_index("expiresAt", expireAfterSeconds=0)
                    self._expiry_indexed = True
                except OperationFailure:  # FerretDB v1 has no TTL indexes
                    self._expiry_indexed = False
            sweep = not self._expiry_indexed and time.monotonic() - self._swept_at > window_s
            if sweep:
                self._swept_at = time.monotonic()
        if sweep:
            threading.Thread(target=self._sweep, name="rate-limit-sweep", daemon=True).start()

    def _sweep(self) -> None:
        """Delete the slots of finished windows."""
        try:
            self._slots.delete_many({"expiresAt": {"$lt": utc_now()}})
        except PyMongoError:
            pass  # the next sweep will do it
