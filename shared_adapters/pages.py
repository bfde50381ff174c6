"""What the chat page and the operator console share: the layout, the stylesheet and the API helper script."""

from flask import Blueprint, Response, render_template

assets = Blueprint("common_assets", __name__, template_folder="templates", static_folder="assets",
                   static_url_path="/assets/common")

# Pages load only their own scripts, styles and data, and may not be framed.
PAGE_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
               "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")


def render_page(template: str, **context):
    """A page rendered from its template, allowed to run its own scripts and to call its own service only."""
    return Response(render_template(template, **context), mimetype="text/html",
                    headers={"Content-Security-Policy": PAGE_POLICY})
