"""GET /failed-messages: the seed's read-only listing of dead-lettered messages, for operators.

Everything else about dead letters (details, replay, discard, the console) is served by the
consumer service's operator server (`consumer-service operator`).
"""

from operator import itemgetter

from flask import Blueprint

from shared_adapters.access import protect
from shared_domain.failures import consumer_client_problem, error_type_problem, status_problem
from shared_domain.identity import OPERATOR

from .query_api import MESSAGE_FILTERS, page
from .services import services

bp = Blueprint("failures", __name__)
protect(bp, OPERATOR)
FAILURE_FILTERS = {
    **MESSAGE_FILTERS,
    "status": ("status", status_problem),
    "errorType": ("errorType", error_type_problem),
    "client": ("consumerClient", consumer_client_problem),
}


@bp.get("/failed-messages")
def list_failed_messages():
    """List failed messages, oldest failure first, filtered by recipient, sender, status, type and time."""
    return page(services().failures, FAILURE_FILTERS, "failedAt", itemgetter("id"))
