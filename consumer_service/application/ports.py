"""What the use cases need from the outside world."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from shared_domain.failures import SourcePosition
from shared_domain.message import Message
from shared_domain.stored_events import StoredEvent

from .records import DeadLetter, IncomingRecord


@dataclass
class Saved:
    """What became of a batch given to the store, by each message's place in the batch; the rest are stored."""

    refused: dict[int, str] = field(default_factory=dict)  # refused for good, and why
    earlier: set[int] = field(default_factory=set)  # a resend of a message another record stored


class MessageStore(Protocol):
    """Stores messages idempotently, keyed on their sender and message id."""

    def save_all(self, messages: list[tuple[Message, SourcePosition]],
                 replaying: Mapping[int, SourcePosition] | None = None) -> Saved:
        """Store messages; say which were refused for good and which another record had stored already.

        A message whose record was stored before (a redelivery), or, for a replay, whose replayed
        record was (`replaying`, by place in the batch: it was dead-lettered, so never announced),
        counts as stored. Raises StoreUnavailable when the store cannot be reached.
        """


class DeadLetterSink(Protocol):
    """Writes dead letters to the dead-letter topic and waits for the broker's acknowledgement."""

    def send_all(self, letters: list[DeadLetter]) -> None:
        """Write every letter or raise DeadLetterUnavailable."""


class StoredEventSink(Protocol):
    """Announces stored messages on the stored-events topic; the broker's acknowledgement is waited for when asked."""

    def publish_stored(self, stored: list[tuple[IncomingRecord, Message]]) -> Callable[[], None]:
        """Publish one event per stored message; return the call that waits for the broker to have them all, or
        raises StoredEventsUnavailable."""


class FailedMessageStore(Protocol):
    """Keeps the queryable projection of the dead-letter topic."""

    def document_of(self, dlq_record: IncomingRecord) -> dict:
        """The failure document a dead letter projects to; raises when it cannot be read."""

    def unprojectable_document(self, dlq_record: IncomingRecord, problem: str) -> dict:
        """The document of a dead letter that cannot be read or stored, with its raw key and value."""

    def save_all(self, documents: list[dict]) -> dict[str, str]:
        """Insert failure documents that are not there yet; return {_id: reason} for those refused for good.

        Raises StoreUnavailable when the store cannot be reached.
        """


class ConversationViews(Protocol):
    """What conversation lists and stream starts read, kept from the stored events."""

    def apply(self, events: list[tuple[int, StoredEvent]]) -> int:
        """Apply (stored-events partition, event) pairs to the views they concern; return how many views changed.

        Raises StoreUnavailable when the store cannot be reached.
        """

    def mark_read(self, read_up_to: dict[int, int]) -> None:
        """Say, for each stored-events partition, the offset before which every event is applied or skipped."""


class DependencyObserver(Protocol):
    """Told whether a dependency answered, so outages and recoveries are reported once."""

    def down(self, error: object) -> None:
        """The dependency failed."""

    def up(self) -> None:
        """The dependency answered."""
