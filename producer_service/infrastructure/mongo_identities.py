"""pymongo registry of clients and operators with their token hashes; lookups cached for a second."""

import hmac
import threading
import time
from collections.abc import Callable

from pymongo import ASCENDING
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError, PyMongoError

from shared_domain.clock import to_iso, utc_now

from ..application.identity import CLIENT, OPERATOR, AlreadyRegistered, NotRegistered, Principal, new_token, token_hash
from .mongo_readers import StoreUnavailable

COLLECTIONS = {CLIENT: "clients", OPERATOR: "operators"}
CACHE_SECONDS = 1.0  # how long a revocation may take to reach every process
CACHE_ENTRIES = 10_000
STALE_RETRY_SECONDS = 5.0


class _TtlCache:
    """A small thread-safe cache whose entries live CACHE_SECONDS."""

    def __init__(self, clock: Callable[[], float]):
        self._entries: dict = {}
        self._lock = threading.Lock()
        self._clock = clock

    def get(self, key, load):
        """The cached value of `key`, loaded again once it is older than CACHE_SECONDS.

        While the store does not answer, what was last loaded still serves (clients keep sending
        through a store outage), so a revocation then waits for the store to come back.
        """
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
        if entry and entry[0] > now:
            return entry[1]
        try:
            value = load()
        except PyMongoError as error:
            if entry is None:
                raise StoreUnavailable(f"{type(error).__name__}: {error}") from None
            with self._lock:  # ask the store again only after a while, not on every request
                self._entries[key] = (now + STALE_RETRY_SECONDS, entry[1])
            return entry[1]
        with self._lock:
            if len(self._entries) >= CACHE_ENTRIES:
                self._entries.clear()
            self._entries[key] = (now + CACHE_SECONDS, value)
        return value


class MongoIdentityRegistry:
    """Clients and operators, one document each: `{_id: name, name, createdAt, revokedAt, tokens: [...]}`."""

    def __init__(self, database: Database, clock: Callable[[], float] = time.monotonic):
        self._database = database
        self._principals = _TtlCache(clock)
        self._clients = _TtlCache(clock)

    def add(self, role: str, name: str, display_name: str | None = None) -> None:
        """Register a client or an operator; raise AlreadyRegistered when the name is taken."""
        collection = self._collection(role)
        collection.create_index([("tokens.hash", ASCENDING)])
        try:
            collection.insert_one({"_id": name, "name": display_name or name, "createdAt": utc_now(),
                                   "revokedAt": None, "tokens": []})
        except DuplicateKeyError:
            raise AlreadyRegistered(f"{role} {name} is already registered") from None

    def issue_token(self, role: str, name: str, label: str = "") -> tuple[str, str]:
        """A new token for a registered, live principal: (token id, token). Only its hash is kept."""
        token_id, token = new_token()
        entry = {"id": token_id, "label": label, "hash": token_hash(token), "createdAt": utc_now(), "revokedAt": None}
        result = self._collection(role).update_one({"_id": name, "revokedAt": None}, {"$push": {"tokens": entry}})
        if result.matched_count == 0:
            raise NotRegistered(f"no live {role} {name}")
        return token_id, token

    def revoke(self, role: str, name: str, token_id: str | None = None) -> None:
        """Revoke one token of a principal, or (without `token_id`) the principal and all its tokens."""
        collection = self._collection(role)
        document = collection.find_one({"_id": name})
        if document is None or (token_id and not any(t["id"] == token_id for t in document["tokens"])):
            raise NotRegistered(f"no {role} {name}" + (f" with token {token_id}" if token_id else ""))
        now = utc_now()
        tokens = [{**t, "revokedAt": t["revokedAt"] or now} if token_id in (None, t["id"]) else t
                  for t in document["tokens"]]
        changes = {"tokens": tokens, **({} if token_id else {"revokedAt": document["revokedAt"] or now})}
        collection.update_one({"_id": name}, {"$set": changes})

    def listing(self, role: str) -> list[dict]:
        """Every principal of a role with its tokens' ids, labels and dates; never a hash."""
        return [_view(document) for document in self._collection(role).find().sort("_id", ASCENDING)]

    def principal_of(self, token: str) -> Principal | None:
        """The live principal a token belongs to, or None; cached for CACHE_SECONDS."""
        digest = token_hash(token)
        return self._principals.get(digest, lambda: self._lookup(digest))

    def is_client(self, name: str) -> bool:
        """Tell whether a live client of that name is registered; cached for CACHE_SECONDS."""
        return self._clients.get(name, lambda: self._collection(CLIENT).count_documents(
            {"_id": name, "revokedAt": None}, limit=1) > 0)

    def _lookup(self, digest: str) -> Principal | None:
        """Find the live principal holding a token with this hash."""
        for role, name in COLLECTIONS.items():
            document = self._database[name].find_one({"tokens.hash": digest})
            if document is None or document["revokedAt"] is not None:
                continue
            for entry in document["tokens"]:
                if hmac.compare_digest(entry["hash"], digest) and entry["revokedAt"] is None:
                    return Principal(role, document["_id"])
        return None

    def _collection(self, role: str):
        """The collection of a role."""
        return self._database[COLLECTIONS[role]]


def _view(document: dict) -> dict:
    """A principal as lists show it."""
    return {
        "name": document["_id"],
        "displayName": document["name"],
        "createdAt": to_iso(document["createdAt"]),
        "revokedAt": document["revokedAt"] and to_iso(document["revokedAt"]),
        "tokens": [{"id": t["id"], "label": t["label"], "createdAt": to_iso(t["createdAt"]),
                    "revokedAt": t["revokedAt"] and to_iso(t["revokedAt"])} for t in document["tokens"]],
    }
