"""Answers other than JSON: no content, and the pages."""

from flask import Response

# Pages load only their own scripts, styles and data, and may not be framed.
PAGE_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
               "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")


def no_content() -> Response:
    """A 204 answer: no body, so no Content-Type."""
    response = Response(status=204)
    del response.headers["Content-Type"]
    return response


def page_response(html: str) -> Response:
    """An HTML page, allowed to run its own scripts and to call its own service."""
    return Response(html, mimetype="text/html", headers={"Content-Security-Policy": PAGE_POLICY})
