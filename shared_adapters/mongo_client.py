"""The MongoDB clients the services open: every wait bounded, so an outage surfaces as an error quickly."""

from contextlib import contextmanager

from pymongo import MongoClient
from pymongo.errors import ConnectionFailure, ExecutionTimeout, PyMongoError, WTimeoutError

from shared_domain.availability import StoreUnavailable

TRANSIENT_ERRORS = (ConnectionFailure, ExecutionTimeout, WTimeoutError)


def connect(uri: str, timeout_ms: int, operation_timeout_ms: int = 5000) -> MongoClient:
    """Open a client whose every wait is bounded, so an outage surfaces as an error quickly."""
    return MongoClient(
        uri, tz_aware=True, serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms, socketTimeoutMS=max(timeout_ms, operation_timeout_ms),
    )


def connect_for_requests(uri: str, timeout_ms: int, operation_timeout_ms: int = 5000) -> MongoClient:
    """Open a client for what requests wait for: each operation is also stopped on the store at its deadline.

    A socket timeout alone gives up on the client's side only: the store goes on with a query nobody
    waits for any more (a page the local store scans for, say), and every other request pays for it.
    With `timeoutMS` each command carries its remaining time as `maxTimeMS`, so the store stops too.
    """
    return MongoClient(
        uri, tz_aware=True, serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms, timeoutMS=max(timeout_ms, operation_timeout_ms),
    )


def is_reachable(client: MongoClient) -> bool:
    """Tell whether the store answers a ping."""
    try:
        client.admin.command("ping")
    except PyMongoError:
        return False
    return True


def is_transient(error: PyMongoError) -> bool:
    """Tell whether an error may go away by itself (connection loss, timeouts, failover)."""
    return isinstance(error, TRANSIENT_ERRORS) or error.has_error_label("RetryableWriteError")


@contextmanager
def transient_as_unavailable():
    """Turn transient pymongo errors into StoreUnavailable."""
    try:
        yield
    except PyMongoError as error:
        if is_transient(error):
            raise StoreUnavailable(f"{type(error).__name__}: {error}") from None
        raise
