"""The MongoDB clients the services open: every wait bounded, so an outage surfaces as an error quickly."""

from contextlib import contextmanager

from bson.codec_options import CodecOptions
from pymongo import MongoClient
from pymongo.errors import ConnectionFailure, ExecutionTimeout, PyMongoError, WTimeoutError

from shared_domain.availability import QueryTooCostly, StoreUnavailable

TRANSIENT_ERRORS = (ConnectionFailure, ExecutionTimeout, WTimeoutError)


OPERATION_TIMEOUT_MS = 5000
# A query a request waits for is stopped by the store itself, a little before the client would stop waiting:
# with a socket timeout alone the store goes on scanning for a request that gave up (and the driver retries
# the read, so twice), and every other request pays for it; the store's own timeout is not retried.
QUERY_TIME_LIMIT_MS = OPERATION_TIMEOUT_MS - 500
# How every client of the services decodes what it reads: dates as timezone-aware UTC.
DECODING = CodecOptions(tz_aware=True)


def connect(uri: str, timeout_ms: int, operation_timeout_ms: int = OPERATION_TIMEOUT_MS) -> MongoClient:
    """Open a client whose every wait is bounded, so an outage surfaces as an error quickly."""
    return MongoClient(
        uri, tz_aware=DECODING.tz_aware, tzinfo=DECODING.tzinfo, serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms, socketTimeoutMS=max(timeout_ms, operation_timeout_ms),
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


@contextmanager
def any_error_as_unavailable():
    """Turn every pymongo error into StoreUnavailable: for writes that only ever retry, where no error is the
    document's fault (FerretDB, for one, answers a write cut short by its own shutdown with an InternalError)."""
    try:
        yield
    except PyMongoError as error:
        raise StoreUnavailable(f"{type(error).__name__}: {error}") from None


@contextmanager
def stopped_at_time_limit(time_limit_ms: int | None):
    """Turn the store's own stop of a time-limited query into QueryTooCostly (the caller's filter, not an outage)."""
    try:
        yield
    except ExecutionTimeout:
        raise QueryTooCostly(f"the store stopped the query at its time limit ({time_limit_ms} ms)") from None
