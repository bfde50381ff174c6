"""One batch through the consumer's two steps, as the loop runs them (it overlaps them across batches), and the
parts of a batch handler a test may leave out."""

from consumer_service.application.handle_batch import BatchHandler, BatchOutcome, complete_batch, prepare_batch
from consumer_service.application.records import IncomingRecord


def handle_batch(records: list[IncomingRecord], handler: BatchHandler) -> BatchOutcome:
    """Store what is addressed to the client, skip the rest, dead-letter what cannot be stored; announce what was
    stored and wait for the announcement, as the loop does before it commits."""
    outcome = complete_batch(prepare_batch(records, handler), handler)
    if outcome.acknowledged is not None:
        outcome.acknowledged()
    return outcome


class NoStoredEvents:
    """A StoredEventSink that announces nothing."""

    def publish_stored(self, stored):
        """Announce nothing, acknowledged at once."""
        return lambda: None


class Unobserved:
    """A DependencyObserver that ignores everything."""

    def down(self, error: object) -> None:
        """Ignore the failure."""

    def up(self) -> None:
        """Ignore the success."""
