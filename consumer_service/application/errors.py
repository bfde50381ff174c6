"""Failures the use cases tell apart: transient, permanent, and a dead-letter queue that is down."""

from shared_domain.availability import StoreUnavailable

__all__ = ["StoreUnavailable", "KafkaUnavailable", "DeadLetterUnavailable", "StoredEventsUnavailable"]


class KafkaUnavailable(Exception):
    """A topic the consumer writes to did not acknowledge a record; nothing may be committed."""


class DeadLetterUnavailable(KafkaUnavailable):
    """The dead-letter topic did not acknowledge a record; nothing may be committed."""


class StoredEventsUnavailable(KafkaUnavailable):
    """The stored-events topic did not acknowledge an event; nothing may be committed."""
