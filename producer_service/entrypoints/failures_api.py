"""GET /failed-messages: the seed's read-only listing of dead-lettered messages, for operators.

Everything else about dead letters (details, replay, discard, the console) is served by the
consumer service's operator server (`consumer-service operator`).
"""

from operator import itemgetter

from flask import Blueprint

from shared_adapters.access import protect
from shared_domain.failed_messages import EQUALITY_FILTERS, STATUS, status_problem
from shared_domain.identity import OPERATOR

from .query_api import page
from .services import services

bp = Blueprint("failures", __name__)
protect(bp, OPERATOR)
# The seed's parameters of the filter grammar, each kept under its own name (FailurePages reads them so): the
# equality filters and a status without `any`, since leaving it out picks any; no reasonContains.
SEED_FILTERS = {**{name: (name, equality.problem) for name, equality in EQUALITY_FILTERS.items()},
                STATUS: (STATUS, status_problem)}


@bp.get("/failed-messages")
def list_failed_messages():
    """List failed messages, oldest failure first, filtered by recipient, sender, status, type and time."""
    return page(services().failures, SEED_FILTERS, "failedAt", itemgetter("id"))
