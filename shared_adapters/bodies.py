"""Reading a request's JSON body: one place that turns any bytes into a document or a 4xx."""

from collections.abc import Callable

from flask import request
from marshmallow import Schema, ValidationError

from shared_domain.json_text import MalformedJson, loads, unsafe_strings

from .errors import ApiError


def json_body():
    """The request's JSON body, or an ApiError (415, 400) explaining what is wrong with it.

    The body must be UTF-8 JSON nested at most a bounded depth, and every string in it (keys
    included) storable text: no NUL, no lone surrogates.
    """
    if not request.is_json:
        raise ApiError(415, "unsupported_media_type", "send the body as application/json",
                       {"Content-Type": [f"expected application/json, got {request.mimetype or 'nothing'}"]})
    return json_document(read_body(lambda: request.get_data(cache=True)))


def read_body(read: Callable[[], bytes]) -> bytes:
    """The bytes `read` gives, or a 400 when the server could not read them (a timeout, malformed chunked encoding)."""
    try:
        return read()
    except OSError as error:
        raise ApiError(400, "unreadable_body", f"the body could not be read: {error}") from None


def json_document(data: bytes):
    """The document a JSON body holds, or a 400: malformed, nested too deep, or holding text that cannot be stored."""
    try:
        body = loads(data)
    except MalformedJson as error:
        raise ApiError(400, "malformed_json", f"the body is {str(error)[:200]}") from None
    problems = unsafe_strings(body)
    if problems:
        raise ApiError(400, "validation_failed", "the body holds text that cannot be stored", problems)
    return body


def load_body(schema: Schema, body) -> dict:
    """Validate a body, or raise a 400 naming each bad field."""
    if not isinstance(body, dict):
        raise ApiError(400, "validation_failed", "the body must be a JSON object", {"_schema": ["must be an object"]})
    try:
        return schema.load(body)
    except ValidationError as error:
        raise ApiError(400, "validation_failed", "the request is invalid", error.normalized_messages()) from None
