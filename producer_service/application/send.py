"""Use case: send one message."""

from collections.abc import Callable
from datetime import datetime

from shared_domain.clock import utc_now
from shared_domain.message import Message, new_message_id

from .ports import Publisher, Receipt


def send_message(fields: dict, publisher: Publisher, clock: Callable[[], datetime] = utc_now) -> tuple[Message, Receipt]:
    """Build the message from validated fields and publish it; raises BrokerUnavailable."""
    message = Message(
        message_id=fields.get("message_id") or new_message_id(),
        sender=fields["sender"],
        recipient=fields["recipient"],
        text=fields["text"],
        sent_at=clock(),
    )
    return message, publisher.publish(message)
