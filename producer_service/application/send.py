"""Use case: send one message."""

from collections.abc import Callable
from datetime import datetime

from shared_domain.clock import utc_now
from shared_domain.message import DEFAULT_MAX_MESSAGE_LENGTH, ClientId, Message, MessageId, MessageText, new_message_id

from .ports import Publisher, Receipt


def send_message(fields: dict, publisher: Publisher, max_length: int = DEFAULT_MAX_MESSAGE_LENGTH,
                 clock: Callable[[], datetime] = utc_now, trace_id: str | None = None) -> tuple[Message, Receipt]:
    """Build the message from validated fields and publish it; raises BrokerUnavailable."""
    message = new_message(fields, max_length, clock)
    return message, publisher.publish(message, trace_id)


def send_messages(batch: list[dict], publisher: Publisher, max_length: int = DEFAULT_MAX_MESSAGE_LENGTH,
                  clock: Callable[[], datetime] = utc_now, trace_id: str | None = None):
    """Publish a batch of validated messages together; return (message, receipt or BrokerUnavailable) pairs."""
    sent_at = clock()  # one moment for the batch: its messages are sent together
    messages = [new_message(fields, max_length, lambda: sent_at) for fields in batch]
    return list(zip(messages, publisher.publish_many(messages, trace_id))) if messages else []


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
