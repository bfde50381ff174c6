"""Use case: send one message."""

from collections.abc import Callable
from concurrent.futures import Future
from datetime import datetime

from shared_domain.clock import utc_now
from shared_domain.message import DEFAULT_MAX_MESSAGE_LENGTH, ClientId, Message, MessageId, MessageText, new_message_id

from .ports import BrokerUnavailable, Publisher, Receipt

Outcomes = Future[list[Receipt | BrokerUnavailable]]


def send_messages(batch: list[dict], publisher: Publisher, max_length: int = DEFAULT_MAX_MESSAGE_LENGTH,
                  clock: Callable[[], datetime] = utc_now, trace_id: str | None = None) -> tuple[list[Message], Outcomes]:
    """Publish validated messages together: the messages, and the future of each one's receipt or BrokerUnavailable."""
    sent_at = clock()  # one moment for the batch: its messages are sent together
    messages = [new_message(fields, max_length, lambda: sent_at) for fields in batch]
    return messages, publisher.publish(messages, trace_id)


def new_message(fields: dict, max_length: int, clock: Callable[[], datetime]) -> Message:
    """The message validated fields describe, sent now; values the schema already made are not checked again."""
    text = fields["text"]
    return Message(
        message_id=MessageId(fields["message_id"]) if fields.get("message_id") else new_message_id(),
        sender=ClientId(fields["sender"]),
        recipient=ClientId(fields["recipient"]),
        text=text if type(text) is MessageText else MessageText(text, max_length),
        sent_at=clock(),
    )
