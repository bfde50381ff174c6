"""Query-string parsing and signed cursor links shared by the list endpoints."""

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping
from urllib.parse import urlencode

from flask import Request

from shared_adapters.errors import ApiError
from shared_domain.clock import parse_iso

from ..application.ports import PageQuery

# Page sizes are plain ASCII digits: str.isdigit would also accept '²' or '①', which int() refuses.
_PAGE_SIZE = re.compile(r"[0-9]{1,6}")
_SIGNATURE_BYTES = 16


def page_query(args: Mapping[str, str], filters: dict[str, tuple[str, Callable[[str], str | None]]],
               limits: tuple[int, int], secret: str, any_of: tuple[dict, ...] = (), scoped: tuple[str, ...] = ()
               ) -> PageQuery:
    """Build a page query from the request arguments; `filters` maps query names to (document field, rule).

    `order` is `asc` (oldest first, the default) or `desc`. Documents must also match one of
    `any_of`, which the caller built from the parameters named in `scoped`.
    Raises ApiError 400 naming every bad parameter.
    """
    default_limit, max_limit = limits
    errors: dict[str, list[str]] = {}
    equals = {}
    for name, (field, problem_of) in filters.items():
        if args.get(name):
            problem = problem_of(args[name])
            if problem:
                errors[name] = [problem]
            equals[field] = args[name]
    since, until = (_time(args, name, errors) for name in ("since", "until"))
    limit = _limit(args.get("limit"), default_limit, max_limit, errors)
    after = _cursor(args.get("cursor"), secret, errors)
    order = args.get("order", "asc")
    if order not in ("asc", "desc"):
        errors["order"] = ["must be asc (oldest first) or desc (newest first)"]
    unknown = set(args) - set(filters) - {"since", "until", "limit", "cursor", "order", *scoped}
    for name in sorted(unknown):
        errors[str(name)] = ["unknown parameter"]
    if errors:
        raise ApiError(400, "invalid_query", "the query parameters are invalid", errors)
    return PageQuery(equals=equals, since=since, until=until, after=after, limit=limit, any_of=any_of,
                     newest_first=order == "desc")


def next_link(request: Request, items: list[dict], query: PageQuery, time_field: str,
              id_of: Callable[[dict], str], secret: str) -> str | None:
    """The `Link: <...>; rel="next"` value when a full page suggests there may be more.

    The link is relative: the request's Host header is the client's to choose, so it is never echoed.
    """
    if len(items) < query.limit:
        return None
    last = items[-1]
    args = {name: value for name, value in request.args.items() if name != "cursor"}
    args["cursor"] = _issue_cursor(last[time_field], id_of(last), secret)
    return f'<{request.path}?{urlencode(args)}>; rel="next"'


def _issue_cursor(moment: str, last_id: str, secret: str) -> str:
    """A cursor after (moment, id), signed so that only cursors this API issued are accepted."""
    payload = base64.urlsafe_b64encode(json.dumps([moment, last_id]).encode()).decode()
    return f"{payload}.{_signature(payload, secret)}"


def _signature(payload: str, secret: str) -> str:
    """The cursor's HMAC-SHA256, shortened."""
    digest = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()[:_SIGNATURE_BYTES]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _time(args: Mapping[str, str], name: str, errors: dict):
    """Parse an ISO 8601 time parameter."""
    if not args.get(name):
        return None
    try:
        return parse_iso(args[name])
    except ValueError as error:
        errors[name] = [f"must be an ISO 8601 date-time, e.g. 2026-01-31T12:00:00Z ({error})"]
        return None


def _limit(raw: str | None, default: int, maximum: int, errors: dict) -> int:
    """Parse the page size."""
    if raw is None:
        return default
    if not _PAGE_SIZE.fullmatch(raw) or not 1 <= int(raw) <= maximum:
        errors["limit"] = [f"must be a whole number from 1 to {maximum}"]
        return default
    return int(raw)


def _cursor(raw: str | None, secret: str, errors: dict):
    """The (time, id) a cursor issued by next_link points after, or None with an error noted."""
    if not raw:
        return None
    payload, _, signature = raw.partition(".")
    try:
        if not hmac.compare_digest(signature.encode(), _signature(payload, secret).encode()):
            raise ValueError("bad signature")
        moment, last_id = json.loads(base64.urlsafe_b64decode(payload.encode()))
        if not isinstance(last_id, str):
            raise ValueError("bad shape")
        return parse_iso(moment), last_id
    except (ValueError, TypeError):
        errors["cursor"] = ["is not a cursor this API issued"]
        return None
