"""Marshmallow schemas for the message on the HTTP API and on the Kafka wire."""

from datetime import datetime

from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, missing, validate

from .clock import as_utc
from .message import DEFAULT_MAX_MESSAGE_LENGTH, ClientId, InvalidValue, MessageId, MessageText, text_problem

ENVELOPE_SCHEMA_VERSION = 1


def rule(problem_of):
    """Turn a `*_problem` function into a marshmallow validator."""

    def check(value):
        problem = problem_of(value)
        if problem:
            raise ValidationError(problem)

    return check


class DomainValue(fields.String):
    """A string loaded as a domain value object, whose own rules are the field's only validation."""

    def __init__(self, value_type: type, **kwargs):
        super().__init__(**kwargs)
        self.value_type = value_type

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return self.value_type(text)
        except InvalidValue as error:
            raise ValidationError(str(error)) from None


class TextOfMessage(fields.String):
    """A message's text, checked against the length limit of the schema it belongs to and loaded as MessageText.

    Checked here rather than in schema hooks, which marshmallow calls with overhead of their own for every message.
    """

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        problem = text_problem(text, self.parent.max_length)
        if problem:
            raise ValidationError(problem)
        return MessageText.checked(text)


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
    """The fields every message carries: sender, recipient and text, loaded as domain values.

    Build one instance per length limit and reuse it: loading is cheap, building is not.
    """

    class Meta:
        unknown = RAISE

    sender = DomainValue(ClientId, required=True, data_key="from")
    recipient = DomainValue(ClientId, required=True, data_key="to")
    text = TextOfMessage(required=True, data_key="message")

    def __init__(self, *args, max_length: int = DEFAULT_MAX_MESSAGE_LENGTH, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_length = max_length  # the text's limit (TextOfMessage)
        # (key in the data, key in the result, field): what load() goes through, for load_one.
        self._loaded = [(field.data_key or name, field.attribute or name, field) for name, field in self.load_fields.items()]
        self._keys = frozenset(key for key, _, _ in self._loaded)
        assert not any(self._hooks.values()), "load_one calls the fields alone: a schema with hooks needs load()"

    def load_one(self, data) -> dict:
        """What load(data) returns, or raises, for one message; a message every field loads skips marshmallow's
        bookkeeping around its fields (most of the cost of a load), which load() then adds to report what failed."""
        if type(data) is dict:
            loaded = {}
            try:
                for key, attribute, field in self._loaded:
                    value = field.deserialize(data.get(key, missing), key, data)
                    if value is not missing:
                        loaded[attribute] = value
            except ValidationError:
                pass
            else:
                if self.unknown != RAISE or data.keys() <= self._keys:
                    return loaded
        return self.load(data)


class SendMessageSchema(MessageFieldsSchema):
    """A request to send one message; the client may choose the message id, and the token names the sender."""

    sender = DomainValue(ClientId, data_key="from")
    message_id = DomainValue(MessageId, data_key="messageId")


class EnvelopeSchema(MessageFieldsSchema):
    """The versioned JSON envelope of a message on Kafka; fields a newer producer added are ignored (docs/wire-format.md)."""

    class Meta:
        unknown = EXCLUDE

    schema_version = fields.Integer(
        required=True, data_key="schemaVersion", strict=True,
        validate=validate.Equal(ENVELOPE_SCHEMA_VERSION),
    )
    message_id = DomainValue(MessageId, required=True, data_key="messageId")
    sent_at = UtcDateTime(required=True, data_key="sentAt")
