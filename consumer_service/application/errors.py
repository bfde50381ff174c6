"""Failures the use cases tell apart: transient, permanent, and a dead-letter queue that is down."""


class StoreUnavailable(Exception):
    """The store could not be reached or did not answer in time; worth retrying."""


class DeadLetterUnavailable(Exception):
    """The dead-letter topic did not acknowledge a record; nothing may be committed."""
