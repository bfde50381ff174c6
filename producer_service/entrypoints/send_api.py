"""POST /send-message and POST /send-messages."""

import functools
import logging

from flask import Blueprint
from marshmallow import ValidationError

from shared_adapters.access import principal, protect, spend
from shared_adapters.bodies import json_body
from shared_adapters.errors import ApiError, store_unavailable, unavailable
from shared_adapters.flask_app import trace_id
from shared_domain.availability import StoreUnavailable
from shared_domain.clock import to_iso
from shared_domain.identity import CLIENT
from shared_domain.schemas import SendMessageSchema

from ..application.ports import BrokerUnavailable
from ..application.send import send_message, send_messages
from .metrics import count_published
from .services import services

bp = Blueprint("send", __name__)
log = logging.getLogger(__name__)
protect(bp, CLIENT)


@bp.post("/send-message")
def send():
    """Validate a message, publish it and answer 202 once the broker acknowledged it."""
    fields = _validated(json_body())
    limit_sends()
    try:
        message, receipt = send_message(fields, services().publisher, services().settings.max_message_length,
                                        trace_id=trace_id())
    except BrokerUnavailable as error:
        count_published(0, 1)
        raise unavailable("broker_unavailable", "the broker did not acknowledge the message; send it again later",
                          services().settings.retry_after_s, error) from None
    count_published(1, 0)
    log.info("message accepted", extra=_about(message, receipt))
    return {"status": "accepted", **_accepted(message, receipt)}, 202


@bp.post("/send-messages")
def send_batch():
    """Send a JSON array of messages together; 202 when all are accepted, else 207 with a result per item."""
    body = json_body()
    limit = services().settings.max_batch_size
    if not isinstance(body, list) or not 1 <= len(body) <= limit:
        raise ApiError(400, "validation_failed", f"the body must be a JSON array of 1 to {limit} messages",
                       {"_schema": [f"must be an array of 1 to {limit} messages"]})
    results: list[dict | None] = [None] * len(body)
    valid: list[tuple[int, dict]] = []
    for index, loaded in enumerate(_validated_many(body)):
        if isinstance(loaded, ApiError):
            results[index] = {"index": index, "status": loaded.status, "error": loaded.code, "details": loaded.details}
        else:
            valid.append((index, loaded))
    limit_sends(len(valid))
    debugging = log.isEnabledFor(logging.DEBUG)
    sent = send_messages([fields for _, fields in valid], services().publisher,
                         services().settings.max_message_length, trace_id=trace_id())
    for (index, _), (message, outcome) in zip(valid, sent):
        if isinstance(outcome, BrokerUnavailable):
            results[index] = {"index": index, "status": 503, "error": "broker_unavailable", "messageId": message.message_id}
        else:
            results[index] = {"index": index, "status": 202, **_accepted(message, outcome)}
            if debugging:
                log.debug("message accepted", extra=_about(message, outcome))
    accepted = sum(1 for result in results if result["status"] == 202)
    acked = sum(1 for _, outcome in sent if not isinstance(outcome, BrokerUnavailable))
    count_published(acked, len(sent) - acked)
    if acked:
        # One line a batch: a grep on any of its message ids finds it; each message's own line (with its sender,
        # which differs between messages while authentication is off) is DEBUG.
        log.info("messages accepted", extra={"messageIds": [message.message_id for message, outcome in sent
                                                            if not isinstance(outcome, BrokerUnavailable)],
                                             "traceId": trace_id()})
    headers = _retry_after() if any(result["status"] == 503 for result in results) else {}
    summary = {"accepted": accepted, "rejected": len(results) - accepted, "results": results}
    return summary, (202 if accepted == len(results) else 207), headers


def limit_sends(count: int = 1) -> None:
    """Count `count` sends against the caller's rate limit; 429 with Retry-After once it is spent."""
    caller = principal()
    if caller is not None and caller.role == CLIENT:
        spend(f"send:{caller.name}", services().settings.send_rate_limit, count)


def _about(message, receipt) -> dict:
    """What a log line says of an accepted message: ids and position, never the text."""
    return {"messageId": message.message_id, "traceId": trace_id(), "from": message.sender, "to": message.recipient,
            "partition": receipt.partition, "offset": receipt.offset}


def _accepted(message, receipt) -> dict:
    """The answer for an accepted message."""
    return {
        "messageId": message.message_id,
        "sentAt": to_iso(message.sent_at),
        "partition": receipt.partition,
        "offset": receipt.offset,
    }


def _retry_after() -> dict:
    """The Retry-After header of a 503."""
    return {"Retry-After": str(services().settings.retry_after_s)}


@functools.cache
def send_schema(max_length: int) -> SendMessageSchema:
    """The send schema for a length limit, built once per process."""
    return SendMessageSchema(max_length=max_length)


def _validated(body) -> dict:
    """Load the body with the send schema, or raise a 400 naming each bad field."""
    [loaded] = _validated_many([body])
    if isinstance(loaded, ApiError):
        raise loaded
    return loaded


def _validated_many(bodies: list) -> list[dict | ApiError]:
    """Each body loaded with the send schema (in one pass: cheaper than one load each), or its 4xx."""
    objects = [index for index, body in enumerate(bodies) if isinstance(body, dict)]
    results: list[dict | ApiError] = [
        ApiError(400, "validation_failed", "the body must be a JSON object", {"_schema": ["must be an object"]})
        if not isinstance(body, dict) else None for body in bodies]
    try:
        loaded, problems = send_schema(services().settings.max_message_length).load(
            [bodies[index] for index in objects], many=True), {}
    except ValidationError as error:
        loaded, problems = error.valid_data, error.normalized_messages()
    for position, index in enumerate(objects):
        if position in problems:
            results[index] = ApiError(400, "validation_failed", "the message is invalid", problems[position])
            continue
        try:
            results[index] = _addressed(loaded[position])
        except ApiError as error:
            results[index] = error
    return results


def _addressed(fields: dict) -> dict:
    """The fields sent as the caller, to a registered client; 403 for another sender, 400 for an unknown recipient."""
    caller = principal()
    if caller is None:  # authentication off: the body names the sender
        if "sender" not in fields:
            raise ApiError(400, "validation_failed", "the message is invalid", {"from": ["Missing data for required field."]})
        return fields
    if fields.setdefault("sender", caller.name) != caller.name:
        raise ApiError(403, "sender_mismatch", f"you send as {caller.name}",
                       {"from": [f"must be your own client id, {caller.name}, or left out"]})
    if not services().settings.open_recipients and not _registered(fields["recipient"]):
        raise ApiError(400, "validation_failed", "the message is invalid", {"to": ["is not a registered client"]})
    return fields


def _registered(client_id: str) -> bool:
    """Tell whether the recipient is a registered client (503 when the store cannot say)."""
    try:
        return services().identities.is_client(client_id)
    except StoreUnavailable as error:
        raise store_unavailable(services().settings.retry_after_s, error) from None
