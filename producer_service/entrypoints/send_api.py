"""POST /send-message and POST /send-messages."""

import functools
import logging
from collections.abc import Callable

from flask import Blueprint
from marshmallow import ValidationError

from shared_adapters.access import Access, principal, protect, spend
from shared_adapters.bodies import json_body
from shared_adapters.deferred_answers import Answer, answer_when
from shared_adapters.errors import ApiError, error_body, store_unavailable, unavailable
from shared_adapters.flask_app import trace_id
from shared_domain.availability import StoreUnavailable
from shared_domain.clock import to_iso
from shared_domain.identity import CLIENT, Principal
from shared_domain.schemas import SendMessageSchema

from ..application.ports import BrokerUnavailable
from ..application.send import Outcomes, send_messages
from .metrics import count_published
from .services import Services, services

SEND_PATH = "/send-message"
bp = Blueprint("send", __name__)
log = logging.getLogger(__name__)
protect(bp, CLIENT)


@bp.post(SEND_PATH)
def send():
    """Validate a message and publish it; 202 once the broker acknowledged it, written without a thread waiting."""
    return answer_when(*send_one(json_body(), services(), principal(), trace_id()))


def send_one(body, serving: Services, caller: Principal | None, trace: str,
             rules: Access | None = None) -> tuple[Outcomes, Callable[[list], Answer]]:
    """Validate a body, count it against the caller's rate limit (under the current app's access `rules` unless
    given) and publish it: the outcome, and what renders the answer from it."""
    fields = _validated(body, serving, caller)
    limit_sends(serving, caller, rules=rules)
    [message], outcomes = send_messages([fields], serving.publisher, serving.settings.max_message_length, trace_id=trace)
    return outcomes, functools.partial(_answer_one, message, trace, serving.settings.retry_after_s)


@bp.post("/send-messages")
def send_batch():
    """Send a JSON array of messages together; 202 when all are accepted, else 207 with a result per item."""
    body, serving, caller = json_body(), services(), principal()
    limit = serving.settings.max_batch_size
    if not isinstance(body, list) or not 1 <= len(body) <= limit:
        raise ApiError(400, "validation_failed", f"the body must be a JSON array of 1 to {limit} messages",
                       {"_schema": [f"must be an array of 1 to {limit} messages"]})
    results: list[dict | None] = [None] * len(body)
    valid: list[tuple[int, dict]] = []
    for index, loaded in enumerate(_validated_many(body, serving, caller)):
        if isinstance(loaded, ApiError):
            results[index] = {"index": index, "status": loaded.status, "error": loaded.code, "details": loaded.details}
        else:
            valid.append((index, loaded))
    limit_sends(serving, caller, len(valid))
    messages, outcomes = send_messages([fields for _, fields in valid], serving.publisher,
                                       serving.settings.max_message_length, trace_id=trace_id())
    sent = [(index, message) for (index, _), message in zip(valid, messages)]
    return answer_when(outcomes, functools.partial(_answer_batch, results, sent, trace_id(), serving.settings.retry_after_s))


def _answer_one(message, trace: str, retry_after_s: int, outcomes: list) -> tuple[dict, int, dict]:
    """The answer to a lone send once the broker answered: 202, or 503 with Retry-After."""
    [outcome] = outcomes
    if isinstance(outcome, BrokerUnavailable):
        count_published(0, 1)
        error = unavailable("broker_unavailable", "the broker did not acknowledge the message; send it again later",
                            retry_after_s, outcome)
        return error_body(error.code, error.message), error.status, error.headers
    count_published(1, 0)
    log.info("message accepted", extra=_about(message, outcome, trace))
    return {"status": "accepted", **_accepted(message, outcome)}, 202, {}


def _answer_batch(results: list[dict | None], sent: list, trace: str, retry_after_s: int,
                  outcomes: list) -> tuple[dict, int, dict]:
    """The answer to a batch once the broker answered: 202 when all are accepted, else 207 with a result per item."""
    debugging = log.isEnabledFor(logging.DEBUG)
    acked = []
    for (index, message), outcome in zip(sent, outcomes):
        if isinstance(outcome, BrokerUnavailable):
            results[index] = {"index": index, "status": 503, "error": "broker_unavailable", "messageId": message.message_id}
        else:
            results[index] = {"index": index, "status": 202, **_accepted(message, outcome)}
            acked.append(message.message_id)
            if debugging:
                log.debug("message accepted", extra=_about(message, outcome, trace))
    count_published(len(acked), len(sent) - len(acked))
    if acked:
        # One line a batch: a grep on any of its message ids finds it; each message's own line (with its sender,
        # which differs between messages while authentication is off) is DEBUG.
        log.info("messages accepted", extra={"messageIds": acked, "traceId": trace})
    accepted = sum(1 for result in results if result["status"] == 202)
    headers = {"Retry-After": str(retry_after_s)} if any(result["status"] == 503 for result in results) else {}
    summary = {"accepted": accepted, "rejected": len(results) - accepted, "results": results}
    return summary, (202 if accepted == len(results) else 207), headers


def limit_sends(serving: Services, caller: Principal | None, count: int = 1, rules: Access | None = None) -> None:
    """Count `count` sends against a client caller's rate limit; 429 with Retry-After once it is spent."""
    if caller is not None and caller.role == CLIENT:
        spend(f"send:{caller.name}", serving.settings.send_rate_limit, count, rules)


def _about(message, receipt, trace: str) -> dict:
    """What a log line says of an accepted message: ids and position, never the text."""
    return {"messageId": message.message_id, "traceId": trace, "from": message.sender, "to": message.recipient,
            "partition": receipt.partition, "offset": receipt.offset}


def _accepted(message, receipt) -> dict:
    """The answer for an accepted message."""
    return {
        "messageId": message.message_id,
        "sentAt": to_iso(message.sent_at),
        "partition": receipt.partition,
        "offset": receipt.offset,
    }


@functools.cache
def send_schema(max_length: int) -> SendMessageSchema:
    """The send schema for a length limit, built once per process."""
    return SendMessageSchema(max_length=max_length)


def _validated(body, serving: Services, caller: Principal | None) -> dict:
    """Load the body with the send schema, or raise a 400 naming each bad field."""
    [loaded] = _validated_many([body], serving, caller)
    if isinstance(loaded, ApiError):
        raise loaded
    return loaded


def _validated_many(bodies: list, serving: Services, caller: Principal | None) -> list[dict | ApiError]:
    """Each body loaded with the send schema, or its 4xx."""
    schema, results = send_schema(serving.settings.max_message_length), []
    for body in bodies:
        if not isinstance(body, dict):
            results.append(ApiError(400, "validation_failed", "the body must be a JSON object",
                                    {"_schema": ["must be an object"]}))
            continue
        try:
            results.append(_addressed(schema.load_one(body), serving, caller))
        except ValidationError as error:
            results.append(ApiError(400, "validation_failed", "the message is invalid", error.normalized_messages()))
        except ApiError as error:
            results.append(error)
    return results


def _addressed(fields: dict, serving: Services, caller: Principal | None) -> dict:
    """The fields sent as the caller, to a registered client; 403 for another sender, 400 for an unknown recipient."""
    if caller is None:  # authentication off: the body names the sender
        if "sender" not in fields:
            raise ApiError(400, "validation_failed", "the message is invalid", {"from": ["Missing data for required field."]})
        return fields
    if fields.setdefault("sender", caller.name) != caller.name:
        raise ApiError(403, "sender_mismatch", f"you send as {caller.name}",
                       {"from": [f"must be your own client id, {caller.name}, or left out"]})
    if not serving.settings.open_recipients and not _registered(fields["recipient"], serving):
        raise ApiError(400, "validation_failed", "the message is invalid", {"to": ["is not a registered client"]})
    return fields


def _registered(client_id: str, serving: Services) -> bool:
    """Tell whether the recipient is a registered client (503 when the store cannot say)."""
    try:
        return serving.identities.is_client(client_id)
    except StoreUnavailable as error:
        raise store_unavailable(serving.settings.retry_after_s, error) from None
