"""OpenAPI 3.1 documents built from the marshmallow schemas (apispec), served at /openapi.json and /docs."""

import re
from collections.abc import Callable

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, current_app, jsonify
from marshmallow import RAISE, Schema, fields

from shared_domain.failed_messages import ERROR_TYPE_PATTERN
from shared_domain.message import ALL_CLIENTS, CLIENT_ID_PATTERN, MESSAGE_ID_PATTERN, ClientId, MessageId
from shared_domain.schemas import DomainValue, MessageFieldsSchema, UtcDateTime

from .access import SessionSchema, SignInSchema
from .pages import render_page

EXTENSION = "openapi"
JSON = "application/json"
# What each error status means on every endpoint that can answer it.
ERRORS = {
    400: "The request is invalid: `details` names each bad field or parameter (nothing when it is not valid HTTP/1.1).",
    401: "No valid bearer token or session (`WWW-Authenticate: Bearer`).",
    403: "The caller may not do this: another role, another sender, or a session write without its CSRF token.",
    404: "No such resource.",
    408: "The request did not arrive whole within REQUEST_READ_TIMEOUT_S; the connection is closed.",
    409: "The request conflicts with the service's state.",
    413: "The body is larger than MAX_BODY_BYTES.",
    414: "The request line (method, path and query) is longer than 4094 bytes.",
    415: "The body is not application/json.",
    417: "The request expects something other than `100-continue`.",
    422: "The store stopped the query at its time limit: the filter reads more than a request may; narrow it.",
    429: "Too many requests; `Retry-After` says when to try again.",
    431: "The request head is larger than 64 KiB, or has too many or too large header fields.",
    503: "A dependency (Kafka or the store) did not answer; `Retry-After` says when to try again.",
}
# What the HTTP worker itself answers, before any endpoint sees the request, so every operation can.
WORKER_ERRORS = (400, 408, 414, 417, 431)
CONTROL_CHARACTERS = r"\u0000-\u0008\u000b-\u001f\u007f"
# What str.strip takes for blank (nothing above U+3000 is whitespace), so "not blank" means the same here.
_BLANK = "".join(f"\\u{code:04x}" for code in range(0x3001) if chr(code).isspace())


def whole(pattern: str) -> str:
    """A pattern the domain matches whole, as JSON Schema writes it (its patterns match anywhere)."""
    return f"^(?:{pattern})$"


def text_rule(max_length: int, forbidden: str = r"\u0000") -> dict:
    """Text that is not blank, at most `max_length` characters long, without the `forbidden` characters."""
    return {"type": "string", "maxLength": max_length,
            "pattern": f"^[^{forbidden}]*[^{forbidden}{_BLANK}][^{forbidden}]*$"}


CLIENT_ID = {"type": "string", "pattern": whole(CLIENT_ID_PATTERN.pattern)}
MESSAGE_ID = {"type": "string", "pattern": whole(MESSAGE_ID_PATTERN.pattern)}
CONSUMER_CLIENT = {"type": "string", "pattern": whole(f"{CLIENT_ID_PATTERN.pattern}|{re.escape(ALL_CLIENTS)}")}
ERROR_TYPE = {"type": "string", "pattern": whole(ERROR_TYPE_PATTERN.pattern)}
PLAIN_TEXT = {"type": "string", "pattern": r"^[^\u0000]*$"}
_VALUES = {ClientId: CLIENT_ID, MessageId: MESSAGE_ID}


def domain_rules(_converter, field, **_kwargs) -> dict:
    """The JSON Schema of the rules a field loads with: its domain value's, or a message text's."""
    if isinstance(field, DomainValue):
        return dict(_VALUES[field.value_type])
    if isinstance(field.parent, MessageFieldsSchema) and field.name == "text":
        return text_rule(field.parent.max_length, CONTROL_CHARACTERS)
    return {}


class ErrorSchema(Schema):
    """Every error answer: a code, a sentence, and details by field."""

    class Meta:
        unknown = RAISE

    error = fields.String(required=True, metadata={"description": "A stable code, e.g. validation_failed."})
    message = fields.String(required=True)
    details = fields.Dict(required=True, metadata={"description": "Problems by field or parameter name."})


class StrictSchema(Schema):
    """A documented answer: no field beyond those listed."""

    class Meta:
        unknown = RAISE


class PositionSchema(StrictSchema):
    """Where a record sits in Kafka."""

    topic = fields.String(required=True)
    partition = fields.Integer(required=True)
    offset = fields.Integer(required=True)


class FailureSummarySchema(StrictSchema):
    """A failed message as listings show it: why, when, where from, what operators did; no payload."""

    id = fields.String(required=True)
    status = fields.String(required=True, metadata={"enum": ["failed", "replayed", "discarded"]})
    reason = fields.String(required=True)
    errorType = fields.String(required=True)
    attempts = fields.Integer(required=True)
    failedAt = fields.DateTime(required=True)
    consumerClient = fields.String(required=True)
    source = fields.Nested(PositionSchema, required=True)
    replayCount = fields.Integer(required=True)
    history = fields.List(fields.Dict(), required=True)
    messageId = fields.String()
    sender = fields.String(data_key="from")
    to = fields.String()
    traceId = fields.String()
    previousFailureId = fields.String()
    truncated = fields.String()
    suspect = fields.String(metadata={"description": "Why its source cannot be a record of the message topic; "
                                                     "replay refuses it unless forced."})


class FailureSchema(FailureSummarySchema):
    """A failed message in full: its original key, payload (UTF-8 or base64) and headers, and its dead letter."""

    key = fields.String(required=True, allow_none=True)
    payload = fields.String(required=True, allow_none=True)
    payloadEncoding = fields.String(required=True, allow_none=True, metadata={"enum": ["utf-8", "base64", "none"]})
    headers = fields.List(fields.Dict(), required=True)
    deadLetter = fields.Nested(PositionSchema, required=True, allow_none=True)


def new_document(title: str, description: str) -> APISpec:
    """An empty document with the bearer and session schemes and the error shape."""
    plugin = MarshmallowPlugin()
    document = APISpec(title=title, version="1", openapi_version="3.1.0", plugins=[plugin],
                       info={"description": description})
    plugin.map_to_openapi_type(UtcDateTime, "string", "date-time")
    plugin.converter.add_attribute_function(domain_rules)
    document.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    document.components.schema("Error", schema=ErrorSchema)
    return document


def security(cookie: str) -> list[dict]:
    """A bearer token, or the page's session cookie (whose writes need X-CSRF-Token)."""
    return [{"bearer": []}, {cookie: []}]


def add_session_scheme(document: APISpec, cookie: str) -> None:
    """The session cookie a page signs in for."""
    document.components.security_scheme(cookie, {
        "type": "apiKey", "in": "cookie", "name": cookie,
        "description": "Set by POST /session; writes through it need the session's CSRF token in X-CSRF-Token."})


def responses(ok: dict[int, tuple[str, object]], *errors: int) -> dict:
    """Operation responses: `ok` maps a status to (description, schema or None); each error, the worker's too: Error."""
    answer = {}
    for status, (description, schema) in ok.items():
        answer[str(status)] = {"description": description}
        if isinstance(schema, tuple):  # (media type, schema) for what is not JSON
            media, body = schema
            answer[str(status)]["content"] = {media: {"schema": body}}
        elif schema is not None:
            answer[str(status)]["content"] = {JSON: {"schema": schema}}
    for status in sorted({*errors, *WORKER_ERRORS} - set(ok)):
        answer[str(status)] = {"description": ERRORS[status], "content": {JSON: {"schema": ErrorSchema}}}
    return answer


def json_body(schema, description: str = "") -> dict:
    """A required JSON request body, whose strings must all be storable text."""
    storable = "Every string in it, keys too, must be storable text: no NUL, no lone surrogate (else 400)."
    return {"required": True, "description": f"{description} {storable}".strip(), "content": {JSON: {"schema": schema}}}


def path_parameter(name: str, description: str, schema: dict | None = None) -> dict:
    """A required path parameter, a string unless `schema` says more."""
    return {"in": "path", "name": name, "required": True, "schema": schema or {"type": "string"},
            "description": description}


def document_blueprint(build: Callable[[], dict]) -> Blueprint:
    """GET /openapi.json (the document `build` returns, built once) and GET /docs (it as a page)."""
    blueprint = Blueprint("openapi", __name__)

    def document() -> dict:
        if EXTENSION not in current_app.extensions:
            current_app.extensions[EXTENSION] = build()
        return current_app.extensions[EXTENSION]

    @blueprint.get("/openapi.json")
    def openapi_json():
        """The OpenAPI 3.1 document of this service."""
        return jsonify(document())

    @blueprint.get("/docs")
    def docs():
        """The document as a page: every endpoint, its statuses and its body."""
        return render_page("docs.html", signed_in=None, document=document())

    return blueprint


class HealthSchema(StrictSchema):
    """Answer of GET /health."""

    status = fields.String(required=True, metadata={"enum": ["ok"]})


def add_common_paths(document: APISpec, role: str, cookie: str, page: str) -> None:
    """The paths every service has: its page (`page` says which), sign-in for it, /metrics, /health, the document."""
    add_session_scheme(document, cookie)
    document.path(path="/", operations={"get": {
        "summary": page, "tags": ["pages"],
        "responses": responses({200: ("The page.", ("text/html", {"type": "string"}))})}})
    document.path(path="/session", operations={
        "post": {"summary": f"Sign a {role} in with one of its tokens; sets the {cookie} cookie (HttpOnly, "
                            "SameSite=Strict, Secure over HTTPS).", "tags": ["sessions"],
                 "requestBody": json_body(SignInSchema),
                 "responses": responses({201: ("Signed in.", SessionSchema)}, 400, 401, 409, 413, 415, 429, 503)},
        "get": {"summary": "Who is signed in, and the CSRF token its writes need.", "tags": ["sessions"],
                "security": [{cookie: []}],
                "responses": responses({200: ("The session.", SessionSchema)}, 401, 409, 503)},
        "delete": {"summary": "Sign out: the session ends (a copied cookie too) and the cookie is cleared; "
                              "without a session, only the cookie is cleared.",
                   "tags": ["sessions"], "security": [{cookie: []}, {}],
                   "responses": responses({204: ("Signed out.", None)}, 401, 403, 409, 503)},
    })
    document.path(path="/metrics", operations={"get": {
        "summary": "Prometheus metrics, for operators and metrics readers.", "tags": ["operability"],
        "security": security(cookie),
        "responses": responses({200: ("Metrics in Prometheus's text format.", ("text/plain", {"type": "string"}))},
                               401, 403, 429, 503)}})
    document.path(path="/health", operations={"get": {
        "summary": "Liveness: the process serves requests.", "tags": ["operability"],
        "responses": responses({200: ("Up.", HealthSchema)})}})
    document.path(path="/openapi.json", operations={"get": {
        "summary": "This document.", "tags": ["operability"],
        "responses": responses({200: ("The OpenAPI 3.1 document.", {"type": "object"})})}})
    document.path(path="/docs", operations={"get": {
        "summary": "This document as a page.", "tags": ["operability"],
        "responses": responses({200: ("A page.", ("text/html", {"type": "string"}))})}})
