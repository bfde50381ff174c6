"""Query-string parsing and cursor links shared by the list endpoints."""

import base64
import json
from collections.abc import Mapping
from urllib.parse import urlencode

from flask import Request

from shared_domain.clock import parse_iso

from ..application.ports import PageQuery
from .errors import ApiError


def page_query(args: Mapping[str, str], filters: dict[str, str], limits: tuple[int, int]) -> PageQuery:
    """Build a page query from the request arguments; `filters` maps query names to document fields.

    Raises ApiError 400 naming every bad parameter.
    """
    default_limit, max_limit = limits
    errors: dict[str, list[str]] = {}
    equals = {field: args[name] for name, field in filters.items() if args.get(name)}
    since, until = (_time(args, name, errors) for name in ("since", "until"))
    limit = _limit(args.get("limit"), default_limit, max_limit, errors)
    after = _cursor(args.get("cursor"), errors)
    unknown = set(args) - set(filters) - {"since", "until", "limit", "cursor"}
    for name in sorted(unknown):
        errors[name] = ["unknown parameter"]
    if errors:
        raise ApiError(400, "invalid_query", "the query parameters are invalid", errors)
    return PageQuery(equals=equals, since=since, until=until, after=after, limit=limit)


def next_link(request: Request, items: list[dict], query: PageQuery, time_field: str, id_field: str) -> str | None:
    """The `Link: <...>; rel="next"` value when a full page suggests there may be more."""
    if len(items) < query.limit:
        return None
    last = items[-1]
    token = base64.urlsafe_b64encode(json.dumps([last[time_field], last[id_field]]).encode()).decode()
    args = {name: value for name, value in request.args.items() if name != "cursor"}
    args["cursor"] = token
    return f'<{request.base_url}?{urlencode(args)}>; rel="next"'


def _time(args: Mapping[str, str], name: str, errors: dict):
    """Parse an ISO 8601 time parameter."""
    if not args.get(name):
        return None
    try:
        return parse_iso(args[name])
    except ValueError:
        errors[name] = ["must be an ISO 8601 date-time, e.g. 2026-01-31T12:00:00Z"]
        return None


def _limit(raw: str | None, default: int, maximum: int, errors: dict) -> int:
    """Parse the page size."""
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        errors["limit"] = [f"must be a whole number from 1 to {maximum}"]
        return default
    return int(raw)


def _cursor(raw: str | None, errors: dict):
    """Decode a cursor produced by next_link."""
    if not raw:
        return None
    try:
        moment, last_id = json.loads(base64.urlsafe_b64decode(raw.encode()))
        return parse_iso(moment), str(last_id)
    except (ValueError, TypeError):
        errors["cursor"] = ["is not a cursor this API issued"]
        return None

