"""GET /messages and GET /failed-messages."""

from flask import Blueprint, jsonify, request

from shared_domain.failures import STATUSES

from ..infrastructure.mongo_readers import StoreUnavailable
from .errors import ApiError
from .paging import next_link, page_query
from .services import services

bp = Blueprint("queries", __name__)


@bp.get("/messages")
def list_messages():
    """List stored messages, oldest first, filtered by recipient, sender and time."""
    return _page(services().messages, {"to": "to", "from": "from"}, "sentAt", "messageId")


@bp.get("/failed-messages")
def list_failed_messages():
    """List failed messages, oldest failure first, filtered by recipient, sender, status, type and time."""
    status = request.args.get("status")
    if status and status not in STATUSES:
        raise ApiError(400, "invalid_query", "the query parameters are invalid",
                       {"status": [f"must be one of {', '.join(STATUSES)}"]})
    filters = {"to": "to", "from": "from", "status": "status", "errorType": "errorType", "client": "consumerClient"}
    return _page(services().failures, filters, "failedAt", "id")


def _page(reader, filters: dict[str, str], time_field: str, id_field: str):
    """Answer one page as a JSON array with a Link header to the next page."""
    limits = (services().settings.page_size_default, services().settings.page_size_max)
    query = page_query(request.args, filters, limits)
    try:
        items = reader.find(query)
    except StoreUnavailable as error:
        raise ApiError(503, "store_unavailable", f"the store did not answer: {error}",
                       headers={"Retry-After": str(services().settings.retry_after_s)}) from None
    response = jsonify(items)
    link = next_link(request, items, query, time_field, id_field)
    if link:
        response.headers["Link"] = link
    return response
