"""An answer without a body: 204 No Content."""

from flask import Response


def no_content() -> Response:
    """A 204 answer: no body, so no Content-Type."""
    response = Response(status=204)
    del response.headers["Content-Type"]
    return response
