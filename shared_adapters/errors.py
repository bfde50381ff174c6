"""JSON errors for every failure the API can meet; never a stack trace."""

import logging

from flask import Flask, jsonify
from gunicorn.http.errors import ParseException
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)
# The code and message of every answer to a failure of the server's own.
INTERNAL_ERROR = ("internal_error", "the server failed to handle the request")


class ApiError(Exception):
    """An error answered as `{"error", "message", "details"}` with a status code."""

    def __init__(self, status: int, code: str, message: str, details: dict | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details = details or {}
        self.headers = headers or {}


def error_body(code: str, message: str, details: dict | None = None) -> dict:
    """The JSON document of every error answer."""
    return {"error": code, "message": message, "details": details or {}}


def error_response(status: int, code: str, message: str, details: dict | None = None, headers: dict | None = None):
    """Build a JSON error response."""
    response = jsonify(error_body(code, message, details))
    response.status_code = status
    response.headers.update(headers or {})
    return response


def unavailable(code: str, message: str, retry_after_s: int, cause: object) -> ApiError:
    """A 503 with Retry-After; the cause (addresses, timeouts) goes to the log, never to the client."""
    log.warning("%s: %s", code, cause)
    return ApiError(503, code, message, headers={"Retry-After": str(retry_after_s)})


def store_unavailable(retry_after_s: int, cause: object) -> ApiError:
    """The 503 of a request the store did not answer in time."""
    return unavailable("store_unavailable", "the store did not answer; try again later", retry_after_s, cause)


def too_costly(cause: object) -> ApiError:
    """The 422 of a query the store stopped at its time limit: the caller's filter reads too much, retrying will not do."""
    log.info("query_too_costly: %s", cause)
    return ApiError(422, "query_too_costly", "the store stopped this query at its time limit: it reads more than a "
                                             "request may; narrow the filter (the command line has no such limit)")


def api_error_response(error: ApiError):
    """The JSON response of an ApiError."""
    return error_response(error.status, error.code, error.message, error.details, error.headers)


def http_api_error(error: HTTPException) -> ApiError:
    """A werkzeug HTTP error as the API answers it: its status, its name as the code, its description."""
    code = (error.name or "error").lower().replace(" ", "_")
    # Keep what the status needs, such as a 405's Allow (RFC 9110), but not its HTML content type.
    headers = {name: value for name, value in error.get_headers() if name.lower() != "content-type"}
    return ApiError(error.code or 500, code, error.description or error.name, headers=headers)


def init_app(app: Flask) -> None:
    """Register JSON handlers for API errors, HTTP errors and anything unexpected."""

    app.register_error_handler(ApiError, api_error_response)

    @app.errorhandler(ParseException)
    def _malformed_body(error: ParseException):
        # gunicorn parses a chunked body while the view reads it, so its framing errors surface here.
        return error_response(400, "bad_request", "the request body is not validly framed")

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):
        return api_error_response(http_api_error(error))

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        return api_error_response(internal_error())


def internal_error() -> ApiError:
    """The 500 of a failure of the server's own, its stack logged (call it where the failure is caught)."""
    log.exception("unhandled error")
    return ApiError(500, *INTERNAL_ERROR)
