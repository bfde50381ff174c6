"""What the chat page and the operator console share: the layout, the stylesheet and the API helper script."""

from flask import Blueprint, render_template

from .responses import page_response

assets = Blueprint("common_assets", __name__, template_folder="templates", static_folder="assets",
                   static_url_path="/assets/common")


def render_page(template: str, **context):
    """A page rendered from its template, with the page security policy."""
    return page_response(render_template(template, **context))
