"""Operator endpoints for the dead-letter queue: list, count, show, replay and discard failed records."""

import dataclasses

from flask import Blueprint, current_app, request
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from shared_adapters.access import access, principal, protect
from shared_adapters.bodies import json_body, load_body
from shared_adapters.errors import ApiError, api_error_response, too_costly, unavailable
from shared_adapters.openapi import CLIENT_ID, CONSUMER_CLIENT, ERROR_TYPE, text_rule
from shared_domain.availability import QueryTooCostly
from shared_domain.failed_messages import (ANY_STATUS, EQUALITY_FILTERS, MAX_REASON_LENGTH, STATUS_FAILED, STATUSES,
                                           Selection, failure_summary_view, failure_view, reason_problem, selection)
from shared_domain.identity import OPERATOR
from shared_domain.schemas import UtcDateTime, rule

from ..application.dlq_operations import Operations, PublishFailed, Report, discard, replay
from ..application.errors import StoreUnavailable

bp = Blueprint("operator", __name__)
protect(bp, OPERATOR)
EXTENSION = "operator"
MAX_BATCH = 1000
MAX_LISTING = 500


def operations() -> Operations:
    """The dead-letter operations of the app handling the current request."""
    return current_app.extensions[EXTENSION]


def _equality(name: str, metadata: dict, **kwargs) -> fields.String:
    """The field of one equality filter of the grammar, loaded under the grammar's name."""
    return fields.String(attribute=name, validate=rule(EQUALITY_FILTERS[name].problem), metadata=metadata, **kwargs)


class FilterSchema(Schema):
    """Which failed records to act on when no ids are given: the filter grammar's parameters, by its names."""

    class Meta:
        unknown = RAISE

    to = _equality("to", CLIENT_ID)
    sender = _equality("from", CLIENT_ID, data_key="from")
    errorType = _equality("errorType", ERROR_TYPE)
    client = _equality("client", CONSUMER_CLIENT)
    reasonContains = fields.String(validate=validate.Length(1, 200))
    status = fields.String(validate=validate.OneOf([*STATUSES, ANY_STATUS]), load_default=STATUS_FAILED)
    since = UtcDateTime()
    until = UtcDateTime()


class JsonBoolean(fields.Boolean):
    """true or false as JSON writes them; not 1, "yes" or "on", which the document does not allow either."""

    def _deserialize(self, value, attr, data, **kwargs) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class ActionSchema(Schema):
    """What every operator action takes: dry run, force, and who acts."""

    class Meta:
        unknown = RAISE

    dryRun = JsonBoolean(load_default=False)
    force = JsonBoolean(load_default=False)
    by = fields.String(load_default="operator-api", validate=validate.Length(1, 128))


class BulkActionSchema(ActionSchema):
    """Body of POST /failed-messages/replay: which records, by ids or by filter."""

    ids = fields.List(fields.String(validate=validate.Length(1, 300)), validate=validate.Length(min=1, max=MAX_BATCH))
    filter = fields.Nested(FilterSchema)
    limit = fields.Integer(validate=validate.Range(1, MAX_BATCH), load_default=100)

    @validates_schema
    def _ids_or_filter(self, data: dict, **_kwargs) -> None:
        if ("ids" in data) == ("filter" in data):
            raise ValidationError("give either ids or filter")


class DiscardSchema(ActionSchema):
    """Body of POST /failed-messages/<id>/discard: why the record must never be replayed."""

    reason = fields.String(required=True, validate=rule(reason_problem), metadata=text_rule(MAX_REASON_LENGTH))


class BulkDiscardSchema(BulkActionSchema, DiscardSchema):
    """Body of POST /failed-messages/discard: which records, and why."""


class ListingSchema(FilterSchema):
    """Query of GET /failed-messages and GET /failed-message-counts: a filter and how many to list."""

    limit = fields.Integer(validate=validate.Range(1, MAX_LISTING), load_default=100)


@bp.get("/failed-messages")
def list_failed_messages():
    """Failed messages matching the filter, oldest failure first, at most `limit`."""
    query = _listing_query()
    chosen = selection(query, limit=query["limit"])
    return [failure_summary_view(document) for document in operations().failures.select(chosen, records=False)]


@bp.get("/failed-message-counts")
def count_failed_messages():
    """How many failed messages match the filter, in all and by error type."""
    by_type = operations().failures.count_by_error_type(selection(_listing_query()))
    return {"total": sum(by_type.values()), "byErrorType": by_type}


def _listing_query() -> dict:
    """The filter in the query string, or a 400 naming each bad parameter."""
    try:
        return ListingSchema().load(request.args.to_dict())
    except ValidationError as error:
        raise ApiError(400, "invalid_query", "the query parameters are invalid", error.normalized_messages()) from None


@bp.errorhandler(PublishFailed)
def broker_unavailable(error: PublishFailed):
    """503: the broker did not acknowledge a replay; what was done so far is recorded."""
    message = "replay stopped: the broker did not acknowledge; what was done so far is recorded, call again to go on"
    return api_error_response(unavailable("broker_unavailable", message, access().retry_after_s, error))


@bp.errorhandler(QueryTooCostly)
def query_too_costly(error: QueryTooCostly):
    """422: the store stopped a listing or a count at its time limit."""
    return api_error_response(too_costly(error))


@bp.errorhandler(StoreUnavailable)
def store_unavailable(error: StoreUnavailable):
    """503: the store did not answer; what was done so far is recorded."""
    message = "the store did not answer; what was done so far is recorded, call again to go on"
    return api_error_response(unavailable("store_unavailable", message, access().retry_after_s, error))


@bp.get("/failed-messages/<path:failure_id>")
def show(failure_id: str):
    """One failed record with its payload, headers and history."""
    [document] = operations().failures.select(Selection(ids=(failure_id,))) or [None]
    if document is None:
        raise ApiError(404, "not_found", f"no failed record {failure_id}")
    return failure_view(document)


@bp.post("/failed-messages/replay")
def replay_failures():
    """Replay failed records by ids or filter; `dryRun` reports without changing anything."""
    body = load_body(BulkActionSchema(), json_body())
    return _report(replay(_selection(body), _acting(body), dry_run=body["dryRun"], force=body["force"]))


@bp.post("/failed-messages/discard")
def discard_failures():
    """Mark failed records discarded, by ids or filter, with a reason; `dryRun` changes nothing."""
    body = load_body(BulkDiscardSchema(), json_body())
    return _report(_discard(_selection(body), body))


@bp.post("/failed-messages/<path:failure_id>/discard")
def discard_failure(failure_id: str):
    """Mark one failed record discarded, with a reason."""
    body = load_body(DiscardSchema(), json_body())
    report = _discard(Selection(ids=(failure_id,)), body)
    if report.missing:
        raise ApiError(404, "not_found", f"no failed record {failure_id}")
    return _report(report)


def _discard(selection: Selection, body: dict) -> Report:
    """Discard the selected records as a discard body asks."""
    return discard(selection, _acting(body), reason=body["reason"], dry_run=body["dryRun"], force=body["force"])


def _acting(body: dict) -> Operations:
    """The operations, recorded under the operator's name (the body's `by` only when authentication is off)."""
    caller = principal()
    return dataclasses.replace(operations(), operator=caller.name if caller else body["by"])


def _selection(body: dict) -> Selection:
    """The records a bulk action body selects."""
    if "ids" in body:
        return Selection(ids=tuple(body["ids"]))
    return selection(body["filter"], limit=body["limit"])


def _report(report: Report) -> dict:
    """A report as JSON."""
    return {"dryRun": report.dry_run, "done": report.done, "skipped": report.skipped, "refused": report.refused,
            "missing": report.missing}
