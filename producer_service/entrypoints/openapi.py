"""The producer's OpenAPI document: the request schemas the endpoints load with, and the shapes they answer."""

from apispec import APISpec
from marshmallow import Schema, fields, validate

from shared_adapters.openapi import (CLIENT_ID, CONSUMER_CLIENT, ERROR_TYPE, JSON, FailureSummarySchema, StrictSchema,
                                     add_common_paths, json_body, new_document, path_parameter, responses, security,
                                     whole)
from shared_domain.identity import CLIENT
from shared_domain.message import CLIENT_ID_PATTERN
from shared_domain.schemas import SendMessageSchema

from ..config import ProducerSettings
from .clients_api import NewClientSchema, NewTokenSchema, RevokeSchema
from .query_api import ReadSchema

COOKIE = "chat_session"
DESCRIPTION = ("Clients send messages as themselves and read their own; operators manage clients and read the "
               "dead-letter listing (replay and discard are on the operator server).")


class AcceptedSchema(StrictSchema):
    """A message the broker acknowledged."""

    status = fields.String(required=True, metadata={"enum": ["accepted"]})
    messageId = fields.String(required=True)
    sentAt = fields.DateTime(required=True)
    partition = fields.Integer(required=True)
    offset = fields.Integer(required=True)


class BatchItemSchema(StrictSchema):
    """What became of one message of a batch: accepted (with its position), or why not."""

    index = fields.Integer(required=True)
    status = fields.Integer(required=True, metadata={"enum": [202, 400, 403, 503]})
    messageId = fields.String()
    sentAt = fields.DateTime()
    partition = fields.Integer()
    offset = fields.Integer()
    error = fields.String()
    details = fields.Dict()


class BatchSchema(StrictSchema):
    """Answer of POST /send-messages."""

    accepted = fields.Integer(required=True)
    rejected = fields.Integer(required=True)
    results = fields.List(fields.Nested(BatchItemSchema), required=True)


class MessageSchema(StrictSchema):
    """A stored message."""

    messageId = fields.String(required=True)
    sender = fields.String(required=True, data_key="from")
    to = fields.String(required=True)
    message = fields.String(required=True)
    sentAt = fields.DateTime(required=True)


class ConversationSchema(StrictSchema):
    """One conversation of the caller."""

    with_ = fields.String(required=True, data_key="with")
    latest = fields.DateTime(required=True)
    preview = fields.String(required=True, metadata={"description": "The start of the latest message."})
    unread = fields.Integer(required=True)


class ReadySchema(StrictSchema):
    """Answer of GET /ready."""

    status = fields.String(required=True, metadata={"enum": ["ready", "unavailable"]})
    dependencies = fields.Dict(keys=fields.String(), values=fields.String(validate=validate.OneOf(["up", "down"])),
                               required=True)


class TokenSchema(StrictSchema):
    """A token as listings show it: never the token or its hash."""

    id = fields.String(required=True)
    label = fields.String(required=True)
    createdAt = fields.DateTime(required=True)
    revokedAt = fields.DateTime(required=True, allow_none=True)


class ClientSchema(StrictSchema):
    """A registered client."""

    name = fields.String(required=True)
    displayName = fields.String(required=True)
    createdAt = fields.DateTime(required=True)
    revokedAt = fields.DateTime(required=True, allow_none=True)
    tokens = fields.List(fields.Nested(TokenSchema), required=True)


class ClientsSchema(StrictSchema):
    """Answer of GET /clients."""

    clients = fields.List(fields.Nested(ClientSchema), required=True)


class IssuedSchema(StrictSchema):
    """A new token, shown in this answer only."""

    clientId = fields.String(required=True)
    tokenId = fields.String(required=True)
    token = fields.String(required=True)


class RevokedSchema(StrictSchema):
    """What a revocation ended: one token, or the client."""

    clientId = fields.String(required=True)
    revoked = fields.String(required=True)


class PositionEventSchema(StrictSchema):
    """Data of a `position` event: where the stream stands (also its id)."""

    position = fields.String(required=True)


class OverflowEventSchema(StrictSchema):
    """Data of an `overflow` event: the reader fell too far behind; the stream ends, to be resumed from its id."""

    error = fields.String(required=True, metadata={"enum": ["too_slow"]})
    message = fields.String(required=True)


# A listing's filters take no effect when empty (`to=`), so an empty value is as good as none.
EMPTY_OR_CLIENT_ID = {"type": "string", "pattern": whole(f"(?:{CLIENT_ID_PATTERN.pattern})?")}
EMPTY = {"type": "string", "maxLength": 0}
MOMENT = {"type": "string", "format": "date-time"}


class PageQuerySchema(Schema):
    """The paging parameters of every listing, but `limit` (see page_size)."""

    since = fields.String(metadata={"description": "Only at or after this moment (ISO 8601 with a time zone).",
                                    "anyOf": [MOMENT, EMPTY]})
    until = fields.String(metadata={"description": "Only before this moment.", "anyOf": [MOMENT, EMPTY]})
    order = fields.String(validate=validate.OneOf(["asc", "desc"]))
    cursor = fields.String(metadata={"description": "From the Link header of the previous page."})


class MessageQuerySchema(PageQuerySchema):
    """Query of GET /messages."""

    with_ = fields.String(data_key="with", metadata={"description": "Only the conversation with this client.",
                                                     **CLIENT_ID})
    to = fields.String(metadata=EMPTY_OR_CLIENT_ID)
    sender = fields.String(data_key="from", metadata=EMPTY_OR_CLIENT_ID)


class FailureQuerySchema(PageQuerySchema):
    """Query of GET /failed-messages."""

    to = fields.String(metadata=EMPTY_OR_CLIENT_ID)
    sender = fields.String(data_key="from", metadata=EMPTY_OR_CLIENT_ID)
    status = fields.String(validate=validate.OneOf(["", "failed", "replayed", "discarded"]))
    errorType = fields.String(metadata={"anyOf": [ERROR_TYPE, EMPTY]})
    client = fields.String(metadata={"description": "The consumer client that failed it.",
                                     "anyOf": [CONSUMER_CLIENT, EMPTY]})


class StreamQuerySchema(Schema):
    """Query of GET /stream."""

    after = fields.String(metadata={"description": "Resume after this position (an event's id); Last-Event-ID wins."})


NEXT_LINK = {"Link": {"description": 'The next page, as <url>; rel="next", when there is one.',
                      "schema": {"type": "string"}}}


def page_size(settings: ProducerSettings) -> dict:
    """The `limit` parameter of every listing."""
    return {"in": "query", "name": "limit", "description": "Page size (PAGE_SIZE_DEFAULT when not given).",
            "schema": {"type": "integer", "minimum": 1, "maximum": settings.page_size_max}}


def events(document: APISpec) -> dict:
    """The schema of each event of GET /stream, as a Server-Sent Events reader gets it: type, id and JSON data."""
    variants = []
    for kind, schema in (("position", PositionEventSchema), ("chat-message", MessageSchema),
                         ("overflow", OverflowEventSchema)):
        name = schema.__name__.removesuffix("Schema")
        if name not in document.components.schemas:
            document.components.schema(name, schema=schema)
        variants.append({"type": "object", "required": ["event", "id", "data"], "properties": {
            "event": {"const": kind}, "id": {"type": "string", "description": "The position to resume after it."},
            "data": {"type": "string", "contentMediaType": JSON,
                     "contentSchema": {"$ref": f"#/components/schemas/{name}"}}}})
    return {"description": "One event (the `retry` line and `: keep-alive` comments carry no data).",
            "oneOf": variants}


def producer_document(settings: ProducerSettings) -> dict:
    """The producer's OpenAPI 3.1 document, with the limits `settings` set."""
    document = new_document("Producer service", DESCRIPTION)
    client, operator = security(COOKIE), [{"bearer": []}]
    message = SendMessageSchema(max_length=settings.max_message_length)
    sent = responses({202: ("Accepted: the broker acknowledged the message.", AcceptedSchema)},
                     400, 401, 403, 413, 415, 429, 503)
    document.path(path="/send-message", operations={"post": {
        "summary": "Send one message as the caller.", "tags": ["messages"], "security": client,
        "parameters": [{"in": "header", "name": "X-Request-Id", "schema": {"type": "string", "maxLength": 128},
                        "description": "Followed through every log line about the message (traceId)."}],
        "requestBody": json_body(message, "`from` may be left out: the token decides it."),
        "responses": sent}})
    document.path(path="/send-messages", operations={"post": {
        "summary": "Send up to MAX_BATCH_SIZE messages; a result per message.", "tags": ["messages"],
        "security": client,
        "requestBody": json_body({"type": "array", "minItems": 1, "maxItems": settings.max_batch_size, "items": {
            "anyOf": [message, {"description": "Anything else gets a result of its own: 400 naming what is wrong."}]}}),
        "responses": responses({202: ("Every message accepted.", BatchSchema),
                                207: ("Some messages accepted, some not: see each result.", BatchSchema)},
                               400, 401, 403, 413, 415, 429, 503)}})
    listed = responses({200: ("One page, oldest first unless order=desc.", {"type": "array", "items": MessageSchema})},
                       400, 401, 403, 422, 429, 503)
    listed["200"]["headers"] = NEXT_LINK
    document.path(path="/messages", operations={"get": {
        "summary": "The caller's messages, sent or received, or one conversation.", "tags": ["messages"],
        "security": client, "parameters": [{"in": "query", "schema": MessageQuerySchema}, page_size(settings)],
        "responses": listed}})
    document.path(path="/conversations", operations={"get": {
        "summary": "The caller's conversations, latest first, with unread counts.", "tags": ["messages"],
        "security": client,
        "responses": responses({200: ("Conversations.", {"type": "array", "items": ConversationSchema})},
                               401, 403, 409, 429, 503)}})
    document.path(path="/conversations/{partner}/read", operations={"post": {
        "summary": "Record that the caller read its conversation with `partner` up to `upTo`.", "tags": ["messages"],
        "security": client, "parameters": [path_parameter("partner", "The other client.", CLIENT_ID)],
        "requestBody": json_body(ReadSchema), "responses": responses({204: ("Recorded.", None)},
                                                                     400, 401, 403, 404, 409, 413, 415, 429, 503)}})
    document.path(path="/stream", operations={"get": {
        "summary": "The caller's messages as Server-Sent Events once stored: `position`, `chat-message` and "
                   "`overflow` events, each with a resume position as its id.", "tags": ["messages"],
        "security": client, "parameters": [
            {"in": "query", "schema": StreamQuerySchema},
            {"in": "header", "name": "Last-Event-ID", "schema": {"type": "string"},
             "description": "Resume after this position (browsers send it when they reconnect)."}],
        "responses": responses({200: ("The stream.", ("text/event-stream", events(document)))},
                               400, 401, 403, 409, 429, 503)}})
    failures = responses({200: ("One page of failed messages, oldest first.",
                                {"type": "array", "items": FailureSummarySchema})}, 400, 401, 403, 422, 429, 503)
    failures["200"]["headers"] = NEXT_LINK
    document.path(path="/failed-messages", operations={"get": {
        "summary": "Dead-lettered messages (read only; details, replay and discard are on the operator server).",
        "tags": ["operators"], "security": operator,
        "parameters": [{"in": "query", "schema": FailureQuerySchema}, page_size(settings)], "responses": failures}})
    document.path(path="/clients", operations={
        "get": {"summary": "Every client with its tokens' ids and labels.", "tags": ["operators"], "security": operator,
                "responses": responses({200: ("Clients.", ClientsSchema)}, 401, 403, 429, 503)},
        "post": {"summary": "Register a client and issue its first token.", "tags": ["operators"], "security": operator,
                 "requestBody": json_body(NewClientSchema),
                 "responses": responses({201: ("Registered.", IssuedSchema)}, 400, 401, 403, 409, 413, 415, 429, 503)}})
    client_id = path_parameter("client_id", "The client.")
    document.path(path="/clients/{client_id}/tokens", operations={"post": {
        "summary": "Issue another token for a client.", "tags": ["operators"], "security": operator,
        "parameters": [client_id], "requestBody": json_body(NewTokenSchema),
        "responses": responses({201: ("Issued.", IssuedSchema)}, 400, 401, 403, 404, 413, 415, 429, 503)}})
    document.path(path="/clients/{client_id}/revoke", operations={"post": {
        "summary": "Revoke one token of a client, or the client.", "tags": ["operators"], "security": operator,
        "parameters": [client_id], "requestBody": json_body(RevokeSchema),
        "responses": responses({200: ("Revoked.", RevokedSchema)}, 400, 401, 403, 404, 413, 415, 429, 503)}})
    document.path(path="/ready", operations={"get": {
        "summary": "Readiness: Kafka and the store answer.", "tags": ["operability"],
        "responses": responses({200: ("Ready.", ReadySchema), 503: ("Not ready: see dependencies.", ReadySchema)})}})
    add_common_paths(document, CLIENT, COOKIE, "The chat page.")
    return document.to_dict()
