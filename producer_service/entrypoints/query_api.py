"""GET /messages: the caller's messages, or one conversation, a page at a time; GET /conversations: their list."""

from collections.abc import Callable

from flask import Blueprint, jsonify, request
from marshmallow import RAISE, Schema

from shared_adapters.access import principal, protect
from shared_adapters.bodies import json_body, load_body
from shared_adapters.errors import ApiError, store_unavailable, too_costly
from shared_adapters.responses import no_content
from shared_domain.availability import QueryTooCostly, StoreUnavailable
from shared_domain.identity import CLIENT
from shared_domain.message import client_id_problem, conversation_key, message_key
from shared_domain.schemas import UtcDateTime

from .paging import next_link, page_query
from .services import services

bp = Blueprint("queries", __name__)
protect(bp, CLIENT)
MESSAGE_FILTERS = {"to": ("to", client_id_problem), "from": ("from", client_id_problem)}


@bp.get("/messages")
def list_messages():
    """List the caller's messages (sent or received), or with `with=<client>` one conversation; oldest first."""
    return page(services().messages, MESSAGE_FILTERS, "sentAt", _message_key, _visible(), ("with",))


class ReadSchema(Schema):
    """Body of POST /conversations/<client>/read: up to which message's `sentAt` the caller has read."""

    class Meta:
        unknown = RAISE

    upTo = UtcDateTime(required=True)


@bp.get("/conversations")
def conversations():
    """The caller's conversations, latest first, each with its unread count."""
    caller = _signed_in()
    try:
        return jsonify(services().conversations.summaries(caller))
    except StoreUnavailable as error:
        raise store_unavailable(services().settings.retry_after_s, error) from None


@bp.post("/conversations/<partner>/read")
def mark_read(partner: str):
    """Remember that the caller read its conversation with `partner` up to `upTo`; 204."""
    caller = _signed_in()
    problem = client_id_problem(partner)
    if problem:
        raise ApiError(404, "not_found", f"no conversation with that client: it {problem}")
    up_to = load_body(ReadSchema(), json_body())["upTo"]
    try:
        services().conversations.mark_read(caller, partner, up_to)
    except StoreUnavailable as error:
        raise store_unavailable(services().settings.retry_after_s, error) from None
    return no_content()


def _signed_in() -> str:
    """The caller's client id; conversations are per client, so they need authentication."""
    caller = principal()
    if caller is None:
        raise ApiError(409, "authentication_off", "conversations need authentication, which is off in this service")
    return caller.name


def _visible() -> tuple[dict, ...]:
    """The messages the caller may see: those it sent or received, or its conversation with `with`."""
    caller, partner = principal(), request.args.get("with")
    problem = partner is not None and client_id_problem(partner)
    if problem:
        raise ApiError(400, "invalid_query", "the query parameters are invalid", {"with": [problem]})
    if caller is None:  # authentication off: everyone's, or the conversation between `with` and anyone
        return ({"from": partner}, {"to": partner}) if partner else ()
    if partner:
        return ({"conversation": conversation_key(caller.name, partner)},)
    return {"from": caller.name}, {"to": caller.name}


def _message_key(item: dict) -> str:
    """Where a listed message sits among those sent at the same moment: its _id."""
    return message_key(item["from"], item["messageId"])


def page(reader, filters: dict, time_field: str, id_of: Callable[[dict], str], any_of: tuple = (),
         scoped: tuple = ()):
    """Answer one page as a JSON array with a Link header to the next page."""
    settings = services().settings
    query = page_query(request.args, filters, (settings.page_size_default, settings.page_size_max), settings.secret_key,
                       any_of, scoped)
    try:
        items = reader.find(query)
    except StoreUnavailable as error:
        raise store_unavailable(settings.retry_after_s, error) from None
    except QueryTooCostly as error:
        raise too_costly(error) from None
    response = jsonify(items)
    link = next_link(request, items, query, time_field, id_of, settings.secret_key)
    if link:
        response.headers["Link"] = link
    return response
