"""pymongo store of browser sessions: `{_id: sha256(session id), role, name, tokenHash, csrf, expiresAt}`.

The id is stored as its hash, like tokens, so a read of the store cannot be replayed as a cookie.
"""

from pymongo.database import Database
from pymongo.errors import PyMongoError

from shared_domain.availability import StoreUnavailable
from shared_domain.clock import utc_now
from shared_domain.identity import token_hash
from shared_domain.session import Session, new_secret

COLLECTION = "sessions"


class MongoSessions:
    """Sessions in one collection; an expired one is deleted when it is next looked up, or at the next sign-in."""

    def __init__(self, database: Database):
        self._collection = database[COLLECTION]

    def start(self, session: Session) -> str:
        """Store a session (sweeping expired ones) and return its id."""
        session_id = new_secret()
        try:
            self._collection.delete_many({"expiresAt": {"$lte": utc_now()}})
            self._collection.insert_one({"_id": token_hash(session_id), "role": session.role, "name": session.name,
                                         "tokenHash": session.token_hash, "csrf": session.csrf_token,
                                         "createdAt": utc_now(), "expiresAt": session.expires_at})
        except PyMongoError as error:
            raise StoreUnavailable(f"{type(error).__name__}: {error}") from None
        return session_id

    def find(self, session_id: str) -> Session | None:
        """The live session of an id, or None."""
        key = token_hash(session_id)
        try:
            document = self._collection.find_one({"_id": key})
            if document is not None and document["expiresAt"] <= utc_now():
                self._collection.delete_one({"_id": key})
                return None
        except PyMongoError as error:
            raise StoreUnavailable(f"{type(error).__name__}: {error}") from None
        if document is None:
            return None
        return Session(document["role"], document["name"], document["tokenHash"], document["csrf"],
                       document["expiresAt"])

    def end(self, session_id: str) -> None:
        """Delete a session."""
        try:
            self._collection.delete_one({"_id": token_hash(session_id)})
        except PyMongoError as error:
            raise StoreUnavailable(f"{type(error).__name__}: {error}") from None
