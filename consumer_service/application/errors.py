"""Failures the use cases tell apart: transient, permanent, and a dead-letter queue that is down."""


class StoreUnavailable(Exception):
    """The store could not be reached or did not answer in time; worth retrying."""


class KafkaUnavailable(Exception):
    """A topic the consumer writes to did not acknowledge a record; nothing may be committed."""


class DeadLetterUnavailable(KafkaUnavailable):
    """The dead-letter topic did not acknowledge a record; nothing may be committed."""


class StoredEventsUnavailable(KafkaUnavailable):
    """The stored-events topic did not acknowledge an event; nothing may be committed."""
