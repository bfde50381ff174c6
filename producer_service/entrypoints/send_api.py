"""POST /send-message."""

from flask import Blueprint, request
from marshmallow import ValidationError

from shared_domain.clock import to_iso
from shared_domain.schemas import SendMessageSchema

from ..application.ports import BrokerUnavailable
from ..application.send import send_message
from .errors import ApiError
from .services import services

bp = Blueprint("send", __name__)


@bp.post("/send-message")
def send():
    """Validate a message, publish it and answer 202 once the broker acknowledged it."""
    fields = _validated(json_body())
    try:
        message, receipt = send_message(fields, services().publisher, services().settings.max_message_length)
    except BrokerUnavailable as error:
        retry_after = str(services().settings.retry_after_s)
        raise ApiError(503, "broker_unavailable", f"the message was not accepted: {error}",
                       headers={"Retry-After": retry_after}) from None
    body = {
        "messageId": message.message_id,
        "status": "accepted",
        "sentAt": to_iso(message.sent_at),
        "partition": receipt.partition,
        "offset": receipt.offset,
    }
    return body, 202


def json_body():
    """The request's JSON body, or a 415/400 ApiError explaining what is wrong with it."""
    if not request.is_json:
        raise ApiError(415, "unsupported_media_type", "send the body as application/json",
                       {"Content-Type": [f"expected application/json, got {request.mimetype or 'nothing'}"]})
    body = request.get_json(silent=True)
    if body is None:
        raise ApiError(400, "malformed_json", "the body is not valid JSON")
    return body


def _validated(body) -> dict:
    """Load the body with the send schema, or raise a 400 naming each bad field."""
    if not isinstance(body, dict):
        raise ApiError(400, "validation_failed", "the body must be a JSON object", {"_schema": ["must be an object"]})
    schema = SendMessageSchema(max_length=services().settings.max_message_length)
    try:
        return schema.load(body)
    except ValidationError as error:
        raise ApiError(400, "validation_failed", "the message is invalid", error.normalized_messages()) from None
