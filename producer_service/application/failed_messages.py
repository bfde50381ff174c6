"""Use case: pages of the seed's failed-message listing, selected through the one filter grammar."""

from typing import Protocol

from shared_domain.failed_messages import SINCE, UNTIL, Selection, failure_summary_view, selection

from .ports import PageQuery


class FailedMessages(Protocol):
    """The failed messages in the store."""

    def select(self, selection: Selection, records: bool = True) -> list[dict]:
        """The failures selected, in order; with `records`, each with its key, payload and headers."""


class FailurePages:
    """A Reader of failed messages: a page query's filters, by parameter name, are the grammar's."""

    def __init__(self, failures: FailedMessages):
        self._failures = failures

    def find(self, query: PageQuery) -> list[dict]:
        """Return one page of failures, as listings show them, matching the query."""
        chosen = selection({**query.equals, SINCE: query.since, UNTIL: query.until}, limit=query.limit,
                           after=query.after, newest_first=query.newest_first)
        return [failure_summary_view(document) for document in self._failures.select(chosen, records=False)]
