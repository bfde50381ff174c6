"""pymongo registry of clients, operators and metrics readers with their token hashes.

Each process keeps a snapshot of every live token hash and asks the store once a second whether
the registry changed (one `_id` lookup of a version counter every change bumps), so a revocation
reaches every process within about a second, and clients keep sending while the store is down.
"""

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from pymongo import ASCENDING
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError, PyMongoError

from shared_domain.availability import StoreUnavailable
from shared_domain.clock import to_iso, utc_now
from shared_domain.identity import (CLIENT, METRICS, OPERATOR, OPERATOR_TOKEN_NAME, AlreadyRegistered, NotRegistered,
                                    Principal, new_token, token_hash)

COLLECTIONS = {CLIENT: "clients", OPERATOR: "operators", METRICS: "metrics_readers"}
CHECK_SECONDS = 1.0  # how long a change may take to reach every process
STALE_RETRY_SECONDS = 5.0
VERSION = "registry_version"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Snapshot:
    """Every live token hash and client name, as of one registry version."""

    version: str
    principals: dict[str, Principal]
    clients: frozenset[str]


class MongoIdentityRegistry:
    """Clients and operators, one document each: `{_id: name, name, createdAt, revokedAt, tokens: [...]}`."""

    def __init__(self, database: Database, clock: Callable[[], float] = time.monotonic):
        self._database = database
        self._clock = clock
        self._lock = threading.Lock()
        self._snapshot: _Snapshot | None = None
        self._next_check = 0.0
        self._checking = False

    def add(self, role: str, name: str, display_name: str | None = None) -> None:
        """Register a client or an operator; raise AlreadyRegistered when the name is taken."""
        if role == OPERATOR and name == OPERATOR_TOKEN_NAME:
            raise AlreadyRegistered(f"{name} is the operator OPERATOR_TOKEN acts as; choose another name")
        collection = self._collection(role)
        try:
            collection.insert_one({"_id": name, "name": display_name or name, "createdAt": utc_now(),
                                   "revokedAt": None, "tokens": []})
        except DuplicateKeyError:
            raise AlreadyRegistered(f"{role} {name} is already registered") from None
        self._changed()

    def issue_token(self, role: str, name: str, label: str = "") -> tuple[str, str]:
        """A new token for a registered, live principal: (token id, token). Only its hash is kept."""
        token_id, token = new_token()
        entry = {"id": token_id, "label": label, "hash": token_hash(token), "createdAt": utc_now(), "revokedAt": None}
        result = self._collection(role).update_one({"_id": name, "revokedAt": None}, {"$push": {"tokens": entry}})
        if result.matched_count == 0:
            raise NotRegistered(f"no live {role} {name}")
        self._changed()
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
        self._changed()

    def listing(self, role: str) -> list[dict]:
        """Every principal of a role with its tokens' ids, labels and dates; never a hash."""
        return [_view(document) for document in self._collection(role).find().sort("_id", ASCENDING)]

    def principal_of(self, token: str) -> Principal | None:
        """The live principal a token belongs to, or None.

        Tokens are found by their SHA-256, so timing can tell nothing about a stored token itself.
        """
        return self.principal_of_hash(token_hash(token))

    def principal_of_hash(self, hashed: str) -> Principal | None:
        """The live principal whose token has this hash, or None (how sessions find out a token was revoked)."""
        return self._current().principals.get(hashed)

    def is_client(self, name: str) -> bool:
        """Tell whether a live client of that name is registered."""
        return name in self._current().clients

    def warm(self, wait_s: float = 5.0, pause_s: float = 0.5) -> None:
        """Load the snapshot before serving (waiting up to `wait_s` for the store), else in the background.

        A process that has it keeps authenticating through a later store outage.
        """
        deadline = time.monotonic() + wait_s
        while not self._try_load() and time.monotonic() < deadline:
            time.sleep(pause_s)
        if self._snapshot is None:
            threading.Thread(target=self._load_when_possible, args=(pause_s,), name="identities", daemon=True).start()

    def _load_when_possible(self, pause_s: float) -> None:
        """Try to load the snapshot until it works."""
        while not self._try_load():
            time.sleep(pause_s)

    def _try_load(self) -> bool:
        """Load the snapshot if the store answers; tell whether there is one."""
        try:
            snapshot = self._current()
        except StoreUnavailable as error:
            log.warning("identities not loaded yet: %s", str(error)[:200])
            return False
        log.info("identities loaded: %d live tokens, %d clients", len(snapshot.principals), len(snapshot.clients))
        return True

    def _current(self) -> _Snapshot:
        """The snapshot, reloaded when the registry's version moved; the last one while the store is down.

        One thread at a time asks the store; the others go on with the snapshot they have meanwhile.
        """
        with self._lock:
            now = self._clock()
            if self._snapshot is not None and (now < self._next_check or self._checking):
                return self._snapshot
            self._checking = self._snapshot is not None
        try:
            version = (self._database[VERSION].find_one({"_id": VERSION}) or {}).get("version", "")
            snapshot = self._snapshot
            if snapshot is None or version != snapshot.version:
                snapshot = self._load(version)
            with self._lock:
                self._snapshot, self._next_check = snapshot, now + CHECK_SECONDS
        except PyMongoError as error:
            with self._lock:
                if self._snapshot is None:
                    raise StoreUnavailable(f"{type(error).__name__}: {error}") from None
                self._next_check = now + STALE_RETRY_SECONDS  # ask again after a while, not on every request
        finally:
            with self._lock:
                self._checking = False
        return self._snapshot

    def _load(self, version: str) -> _Snapshot:
        """Read every live principal's live token hashes."""
        principals, clients = {}, set()
        for role, name in COLLECTIONS.items():
            for document in self._database[name].find({"revokedAt": None}):
                if role == CLIENT:
                    clients.add(document["_id"])
                for entry in document["tokens"]:
                    if entry["revokedAt"] is None:
                        principals[entry["hash"]] = Principal(role, document["_id"])
        return _Snapshot(version, principals, frozenset(clients))

    def _changed(self) -> None:
        """Give the registry a new version so that every process reloads its snapshot.

        A fresh random value rather than an increment: FerretDB v1 loses concurrent `$inc`s, so two
        changes at once could leave the count where a process already saw it.
        """
        self._database[VERSION].update_one({"_id": VERSION}, {"$set": {"version": uuid.uuid4().hex}}, upsert=True)

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
