"""The dead-letter console at `/` of the operator server: filters, details, dry-run-first replay and discard."""

from flask import Blueprint

from shared_adapters.access import page_session
from shared_adapters.pages import render_page
from shared_domain.failed_messages import STATUSES
from shared_domain.identity import OPERATOR

bp = Blueprint("console", __name__, template_folder="templates", static_folder="assets",
               static_url_path="/assets/console")


@bp.get("/")
def console():
    """The console when an operator is signed in, else its sign-in form."""
    return render_page("console.html", signed_in=page_session(OPERATOR), statuses=STATUSES)
