"""The one error every service raises when the store does not answer."""


class StoreUnavailable(Exception):
    """The store could not be reached or did not answer in time; worth retrying."""
