"""What the producer's use cases need from the outside world."""

from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from shared_domain.message import Message


class BrokerUnavailable(Exception):
    """The broker did not acknowledge the record in time."""


@dataclass(frozen=True)
class Receipt:
    """Where the broker put an acknowledged record."""

    partition: int
    offset: int


@dataclass(frozen=True)
class PageQuery:
    """Equality filters, a time range and a cursor over one collection, in (time, id) order."""

    equals: dict
    since: datetime | None = None
    until: datetime | None = None
    after: tuple[datetime, str] | None = None
    limit: int = 50
    # Documents must also match one of these equality sets (who may see what), when any are given.
    any_of: tuple[dict, ...] = ()
    newest_first: bool = False


class Publisher(Protocol):
    """Publishes messages; the broker's acknowledgements come later, with no thread waiting for them."""

    def publish(self, messages: list[Message], trace_id: str | None = None) -> Future[list[Receipt | BrokerUnavailable]]:
        """Publish together; the future of each message's receipt or why it was not acknowledged, in order."""


class Reader(Protocol):
    """Reads one page of documents matching a query, as API objects."""

    def find(self, query: PageQuery) -> list[dict]:
        """Return up to query.limit items in (time, id) order."""
