"""Use case: keep the conversation views in step with the stored-events topic."""

import logging

from shared_domain.plausibility import EndsUnknown, misplaced
from shared_domain.stored_events import StoredEvent, decode_stored_event

from .errors import KafkaUnavailable
from .ports import ConversationViews
from .project_failures import Judge
from .records import IncomingRecord

log = logging.getLogger(__name__)


def project_views(records: list[IncomingRecord], views: ConversationViews, judge: Judge, partitions: int) -> int:
    """Apply every plausible stored event to the views; return how many records were read.

    An event that cannot be read, whose source cannot be a record of the message topic, or whose
    source partition is not its recipient's is skipped and reported: anyone who can write to the
    stored-events topic could otherwise move a client's views. Raises StoreUnavailable, or
    KafkaUnavailable when the sources cannot be checked yet, in which case the caller must not commit
    and should retry later.
    """
    events = [(record.partition, event) for record in records if (event := _event_of(record)) is not None]
    try:
        problems = judge([event.source for _, event in events]) if events else []
    except EndsUnknown as error:
        raise KafkaUnavailable(str(error)) from error
    except Exception as error:  # the safety net: a check that fails skips the batch, never stops the projection
        problems = [f"not checked ({type(error).__name__}: {error})"] * len(events)
    plausible = []
    for (partition, event), problem in zip(events, problems):
        problem = problem or misplaced(event.message.recipient, event.source, partitions)
        if problem is None:
            plausible.append((partition, event))
        else:
            log.warning("views: skipping a stored event of %.100s at %.100s:%d:%d: %.300s", event.message.message_id,
                        event.source.topic, event.source.partition, event.source.offset, problem)
    if plausible:
        views.apply(plausible)
    read_up_to: dict[int, int] = {}
    for record in records:
        read_up_to[record.partition] = max(record.offset + 1, read_up_to.get(record.partition, 0))
    views.mark_read(read_up_to)  # last: a stream waits on it for every event before it
    return len(records)


def _event_of(record: IncomingRecord) -> StoredEvent | None:
    """The record's stored event, or None (reported) when it cannot be read."""
    try:
        if record.defect:
            raise ValueError(record.defect)
        return decode_stored_event(record.value or b"")
    except Exception as error:  # the safety net: no record stops the projection
        log.warning("views: skipping an unreadable stored event at %s:%d:%d: %.300s", record.topic, record.partition,
                    record.offset, error)
        return None
