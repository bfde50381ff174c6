"""The chat page at `/`: sign in, conversations, history, composer and live updates over the JSON API."""

from flask import Blueprint

from shared_adapters.access import page_session
from shared_adapters.pages import render_page
from shared_domain.identity import CLIENT

from .services import services

bp = Blueprint("chat", __name__, template_folder="templates", static_folder="assets", static_url_path="/assets/chat")


@bp.get("/")
def chat():
    """The chat when a client is signed in, else its sign-in form."""
    return render_page("chat.html", signed_in=page_session(CLIENT), max_length=services().settings.max_message_length)
