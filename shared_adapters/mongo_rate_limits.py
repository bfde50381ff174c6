"""Fixed-window rate limits counted in MongoDB, so every worker process shares the counts."""

import math
import threading
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError, OperationFailure, PyMongoError

from shared_domain.availability import StoreUnavailable
from shared_domain.clock import utc_now

COLLECTION = "rate_limits"
BLOCKS = 20  # a window's limit is leased in twentieths
UNAVAILABLE_PAUSE_S = 5.0
BACKGROUND_WAIT_S = 30.0  # the longest a hit waits for its window's first block, leased in the background


@dataclass
class _Lease:
    """What this process holds of one key's window: hits left in the blocks it leased, and the next block to try."""

    left: int = 0
    next_block: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    asked_ahead: bool = False  # its first block was handed to the background
    written: threading.Event = field(default_factory=threading.Event)  # clear while the background writes a block

    def __post_init__(self) -> None:
        self.written.set()


class MongoRateLimiter:
    """Each process leases a window's hits a block at a time: a block is a document under a unique `_id`.

    Inserting a new `_id` is the one write every MongoDB-protocol store makes atomic: FerretDB v1
    loses concurrent `$inc`s (160 concurrent increments of one counter left it at 18). A window of
    `limit` hits has BLOCKS blocks; a process spends the blocks it leased before it leases another,
    so hits cost a store write once per block, no more than `limit` pass, and a client may be
    refused early by at most one unspent block per other process. Each key's windows begin at an
    offset of their own (a hash of the key), so that the leases of many clients are not all
    renewed in the same second, and a key's hit has the first block of its next window leased in
    the background, so that a client sending steadily seldom waits for a lease at a window's start.
    """

    def __init__(self, database: Database, clock: Callable[[], float] = time.time):
        self._blocks = database[COLLECTION]
        self._clock = clock
        self._lock = threading.Lock()
        self._leases: dict[tuple[str, int], _Lease] = {}
        self._expiry_indexed: bool | None = None
        self._swept_at = 0.0
        self._unavailable_until = 0.0
        self._latest_window = -1
        self._background = ThreadPoolExecutor(1, thread_name_prefix="rate-limit-ahead")

    def hit(self, key: str, limit: int, window_s: int, cost: int = 1) -> float | None:
        """Count `cost` hits; None while within `limit` per `window_s`, else the seconds until the window ends.

        Raises StoreUnavailable when the store does not answer, and for UNAVAILABLE_PAUSE_S after that without
        asking it, so that an outage does not slow every request down, nor hits on one key queue behind each other's
        attempts: the caller counts them itself meanwhile.
        """
        if self._resting():
            raise StoreUnavailable("the store did not answer a moment ago")
        try:
            return self._hit(key, limit, window_s, cost)
        except PyMongoError as error:
            self._rest()
            raise StoreUnavailable(f"{type(error).__name__}: {error}") from None

    def _hit(self, key: str, limit: int, window_s: int, cost: int) -> float | None:
        """Spend hits from this process's lease, leasing further blocks while the window has some."""
        now = self._clock()
        offset = zlib.crc32(key.encode()) % window_s
        window = math.floor((now + offset) / window_s)
        self._housekeeping(math.floor(now / window_s), window_s)
        size = math.ceil(limit / BLOCKS)
        with self._lock:
            lease, upcoming = self._lease_of(key, window), self._lease_of(key, window + 1)
        if not self._spend(key, window, lease, size, limit, window_s, cost):
            return max((window + 1) * window_s - offset - now, 0.001)
        self._lease_ahead(key, window + 1, upcoming, size, window_s)  # a first block holds `size` hits
        return None

    def _lease_of(self, key: str, window: int) -> _Lease:
        """This process's lease of a key's window, made when first asked for (the caller holds the lock)."""
        lease = self._leases.get((key, window))
        if lease is None:
            lease = self._leases[(key, window)] = _Lease()
        return lease

    def _spend(self, key: str, window: int, lease: _Lease, size: int, limit: int, window_s: int, cost: int) -> bool:
        """Spend `cost` hits of the lease, leasing blocks on this thread while it has too few; False when spent.

        Only hits on the same key wait for a block being written; other keys go on. A block the
        background is writing is waited for (once) rather than written again.
        """
        waited = False
        while True:
            with lease.lock:
                if waited or lease.written.is_set() or lease.left >= cost:
                    while lease.left < cost and lease.next_block * size < limit:
                        # Hits that queued for this lock while the store did not answer another ask it no more.
                        if self._resting():
                            raise StoreUnavailable("the store did not answer a lease a moment ago")
                        if self._lease(f"{key}@{window}/{lease.next_block}", 2 * window_s):
                            lease.left += min(size, limit - lease.next_block * size)
                        lease.next_block += 1
                    if lease.left < cost:
                        return False
                    lease.left -= cost
                    return True
            lease.written.wait(BACKGROUND_WAIT_S)
            waited = True

    def _lease_ahead(self, key: str, window: int, lease: _Lease, hits: int, window_s: int) -> None:
        """Have the first block of a key's next window leased in the background, once."""
        with lease.lock:
            if lease.asked_ahead or lease.next_block > 0 or self._resting():
                return
            lease.asked_ahead = True
        self._background.submit(self._take_ahead, f"{key}@{window}/0", lease, hits, window_s)

    def _take_ahead(self, block_id: str, lease: _Lease, hits: int, window_s: int) -> None:
        """Lease a window's first block, unless a hit in that window got to it first (kept until the window ends)."""
        with lease.lock:
            if lease.next_block > 0 or self._resting():
                return  # taken already, or the store does not answer: that window's hits lease for themselves
            lease.next_block = 1
            lease.written.clear()
        taken = False
        try:
            taken = self._lease(block_id, 3 * window_s)
        except PyMongoError:
            pass  # noted by _lease: that window's hits lease for themselves
        finally:
            with lease.lock:
                lease.left += hits if taken else 0
                lease.written.set()

    def _lease(self, block_id: str, keep_s: int) -> bool:
        """Take a block unless another process has it; a store that does not answer is noted before the lock is let go."""
        try:
            self._blocks.insert_one({"_id": block_id, "expiresAt": utc_now() + timedelta(seconds=keep_s)})
        except DuplicateKeyError:
            return False
        except PyMongoError:
            self._rest()
            raise
        return True

    def _rest(self) -> None:
        """Leave the store alone for UNAVAILABLE_PAUSE_S: it did not answer."""
        self._unavailable_until = time.monotonic() + UNAVAILABLE_PAUSE_S

    def _resting(self) -> bool:
        """Whether the store is being left alone, having not answered a moment ago."""
        return time.monotonic() < self._unavailable_until

    def _housekeeping(self, window: int, window_s: int) -> None:
        """Forget finished windows; have the store drop them (a TTL index, or a sweep a minute where there is none)."""
        with self._lock:
            if window > self._latest_window:
                self._latest_window = window
                self._leases = {entry: lease for entry, lease in self._leases.items() if entry[1] >= window}
            if self._expiry_indexed is None:
                try:
                    self._blocks.create_index("expiresAt", expireAfterSeconds=0)
                    self._expiry_indexed = True
                except OperationFailure:  # FerretDB v1 has no TTL indexes
                    self._expiry_indexed = False
            sweep = not self._expiry_indexed and time.monotonic() - self._swept_at > window_s
            if sweep:
                self._swept_at = time.monotonic()
        if sweep:
            threading.Thread(target=self._sweep, name="rate-limit-sweep", daemon=True).start()

    def _sweep(self) -> None:
        """Delete the blocks of finished windows."""
        try:
            self._blocks.delete_many({"expiresAt": {"$lt": utc_now()}})
        except PyMongoError:
            pass  # the next sweep will do it
