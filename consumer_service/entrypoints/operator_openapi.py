"""The operator server's OpenAPI document: the dead-letter API, from the schemas its endpoints load with."""

from marshmallow import fields

from shared_adapters.openapi import (FailureSchema, FailureSummarySchema, StrictSchema, add_common_paths, json_body,
                                     new_document, path_parameter, responses, security)
from shared_domain.identity import OPERATOR

from .operator_api import BulkActionSchema, BulkDiscardSchema, DiscardSchema, ListingSchema

COOKIE = "console_session"
DESCRIPTION = ("Operators list, inspect, replay and discard dead-lettered messages; every action can be a dry run "
               "and records who did it.")


class ReportSchema(StrictSchema):
    """What an action did (or, in a dry run, would do) to each selected record."""

    dryRun = fields.Boolean(required=True)
    done = fields.List(fields.String(), required=True)
    skipped = fields.Dict(keys=fields.String(), values=fields.String(), required=True,
                          metadata={"description": "Left alone, by failure id, and why (e.g. already replayed)."})
    refused = fields.Dict(keys=fields.String(), values=fields.String(), required=True,
                          metadata={"description": "Refused by the loop guard, by failure id, and why."})
    missing = fields.List(fields.String(), required=True)


class CountsSchema(StrictSchema):
    """Answer of GET /failed-message-counts."""

    total = fields.Integer(required=True)
    byErrorType = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)


# A bulk action selects by ids or by filter, never both.
IDS_OR_FILTER = {"oneOf": [{"required": ["ids"]}, {"required": ["filter"]}]}


def operator_document() -> dict:
    """The operator server's OpenAPI 3.1 document."""
    document = new_document("Operator server", DESCRIPTION)
    for name, schema in (("BulkAction", BulkActionSchema), ("BulkDiscard", BulkDiscardSchema)):
        document.components.schema(name, IDS_OR_FILTER, schema=schema)
    operator = security(COOKIE)
    acted = responses({200: ("What was done, or would be in a dry run.", ReportSchema)},
                      400, 401, 403, 413, 415, 422, 429, 503)
    document.path(path="/failed-messages", operations={"get": {
        "summary": "Failed messages matching the filter, oldest first, at most `limit`.", "tags": ["dead letters"],
        "security": operator, "parameters": [{"in": "query", "schema": ListingSchema}],
        "responses": responses({200: ("Failed messages.", {"type": "array", "items": FailureSummarySchema})},
                               400, 401, 403, 422, 429, 503)}})
    document.path(path="/failed-message-counts", operations={"get": {
        "summary": "How many failed messages match the filter, in all and by error type.", "tags": ["dead letters"],
        "security": operator, "parameters": [{"in": "query", "schema": ListingSchema}],
        "responses": responses({200: ("Counts.", CountsSchema)}, 400, 401, 403, 422, 429, 503)}})
    failure_id = path_parameter("failure_id", "The failure's id, e.g. client-messages:2:17:clientB.")
    document.path(path="/failed-messages/{failure_id}", operations={"get": {
        "summary": "One failed message with its payload, headers, dead-letter context and history.",
        "tags": ["dead letters"], "security": operator, "parameters": [failure_id],
        "responses": responses({200: ("The failed message.", FailureSchema)}, 401, 403, 404, 429, 503)}})
    document.path(path="/failed-messages/replay", operations={"post": {
        "summary": "Republish failed messages, by ids or by filter; refused past the replay cap unless forced.",
        "tags": ["dead letters"], "security": operator, "requestBody": json_body(BulkActionSchema),
        "responses": acted}})
    document.path(path="/failed-messages/discard", operations={"post": {
        "summary": "Mark failed messages discarded with a reason, by ids or by filter.", "tags": ["dead letters"],
        "security": operator, "requestBody": json_body(BulkDiscardSchema), "responses": acted}})
    document.path(path="/failed-messages/{failure_id}/discard", operations={"post": {
        "summary": "Mark one failed message discarded with a reason.", "tags": ["dead letters"], "security": operator,
        "parameters": [failure_id], "requestBody": json_body(DiscardSchema),
        "responses": responses({200: ("What was done.", ReportSchema)}, 400, 401, 403, 404, 413, 415, 429, 503)}})
    add_common_paths(document, OPERATOR, COOKIE, "The dead-letter console.")
    return document.to_dict()
