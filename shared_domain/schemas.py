"""Marshmallow schemas for the message on the HTTP API and on the Kafka wire."""

from datetime import datetime

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates

from .clock import as_utc
from .message import DEFAULT_MAX_MESSAGE_LENGTH, client_id_problem, message_id_problem, text_problem

ENVELOPE_SCHEMA_VERSION = 1


def rule(problem_of):
    """Turn a `*_problem` function into a marshmallow validator."""

    def check(value):
        problem = problem_of(value)
        if problem:
            raise ValidationError(problem)

    return check


class UtcDateTime(fields.Field):
    """An ISO 8601 date-time with a time zone, loaded as UTC; a field error when UTC cannot hold it."""

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            moment = datetime.fromisoformat(value)
        except (TypeError, ValueError):
            raise ValidationError("must be an ISO 8601 date-time, e.g. 2026-01-31T12:00:00Z") from None
        if moment.tzinfo is None:
            raise ValidationError("must carry a time zone, e.g. Z or +01:00")
        try:
            return as_utc(moment)
        except OverflowError:
            raise ValidationError("must fall within the years 1 to 9999 in UTC") from None


class MessageFieldsSchema(Schema):
    """The fields every message carries: sender, recipient and text."""

    class Meta:
        unknown = RAISE

    sender = fields.String(required=True, data_key="from", validate=rule(client_id_problem))
    recipient = fields.String(required=True, data_key="to", validate=rule(client_id_problem))
    text = fields.String(required=True, data_key="message")

    def __init__(self, *args, max_length: int = DEFAULT_MAX_MESSAGE_LENGTH, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_length = max_length

    @validates("text")
    def _check_text(self, value: str, **_kwargs) -> None:
        problem = text_problem(value, self.max_length)
        if problem:
            raise ValidationError(problem)


class SendMessageSchema(MessageFieldsSchema):
    """A request to send one message; the client may choose the message id, and the token names the sender."""

    sender = fields.String(data_key="from", validate=rule(client_id_problem))
    message_id = fields.String(data_key="messageId", validate=rule(message_id_problem))


class EnvelopeSchema(MessageFieldsSchema):
    """The versioned JSON envelope of a message on Kafka."""

    schema_version = fields.Integer(
        required=True, data_key="schemaVersion", strict=True,
        validate=validate.Equal(ENVELOPE_SCHEMA_VERSION),
    )
    message_id = fields.String(required=True, data_key="messageId", validate=rule(message_id_problem))
    sent_at = UtcDateTime(required=True, data_key="sentAt")
