"""The errors every service raises when the store does not answer, or will not answer a query in time."""


class StoreUnavailable(Exception):
    """The store could not be reached or did not answer in time; worth retrying."""


class QueryTooCostly(Exception):
    """The store stopped a query at its time limit: it reads more than a request may; narrowing it helps, retrying not."""
