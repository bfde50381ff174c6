"""The MongoDB client every service opens: every wait bounded, so an outage surfaces as an error quickly."""

from pymongo import MongoClient
from pymongo.errors import PyMongoError


def connect(uri: str, timeout_ms: int, operation_timeout_ms: int = 5000) -> MongoClient:
    """Open a client whose every wait is bounded, so an outage surfaces as an error quickly."""
    return MongoClient(
        uri, tz_aware=True, serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms, socketTimeoutMS=max(timeout_ms, operation_timeout_ms),
    )


def is_reachable(client: MongoClient) -> bool:
    """Tell whether the store answers a ping."""
    try:
        client.admin.command("ping")
    except PyMongoError:
        return False
    return True
