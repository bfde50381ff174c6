"""GET /messages and GET /failed-messages."""

from flask import Blueprint, jsonify, request

from shared_domain.failures import consumer_client_problem, error_type_problem, status_problem
from shared_domain.message import client_id_problem

from ..infrastructure.mongo_readers import StoreUnavailable
from .errors import unavailable
from .paging import next_link, page_query
from .services import services

bp = Blueprint("queries", __name__)
MESSAGE_FILTERS = {"to": ("to", client_id_problem), "from": ("from", client_id_problem)}
FAILURE_FILTERS = {
    **MESSAGE_FILTERS,
    "status": ("status", status_problem),
    "errorType": ("errorType", error_type_problem),
    "client": ("consumerClient", consumer_client_problem),
}


@bp.get("/messages")
def list_messages():
    """List stored messages, oldest first, filtered by recipient, sender and time."""
    return _page(services().messages, MESSAGE_FILTERS, "sentAt", "messageId")


@bp.get("/failed-messages")
def list_failed_messages():
    """List failed messages, oldest failure first, filtered by recipient, sender, status, type and time."""
    return _page(services().failures, FAILURE_FILTERS, "failedAt", "id")


def _page(reader, filters: dict, time_field: str, id_field: str):
    """Answer one page as a JSON array with a Link header to the next page."""
    settings = services().settings
    query = page_query(request.args, filters, (settings.page_size_default, settings.page_size_max), settings.secret_key)
    try:
        items = reader.find(query)
    except StoreUnavailable as error:
        raise unavailable("store_unavailable", "the store did not answer; try again later",
                          settings.retry_after_s, error) from None
    response = jsonify(items)
    link = next_link(request, items, query, time_field, id_field, settings.secret_key)
    if link:
        response.headers["Link"] = link
    return response
