"""Bearer-token authentication, roles per blueprint, and rate limits shared by every worker."""

import hmac
import logging

from flask import Blueprint, g, request

from ..application.identity import CLIENT, OPERATOR, Principal
from ..infrastructure.mongo_readers import StoreUnavailable
from .errors import ApiError, store_unavailable
from .services import services

log = logging.getLogger(__name__)
LEGACY_OPERATOR = Principal(OPERATOR, "operator")
WINDOW_S = 60


def protect(blueprint: Blueprint, role: str) -> None:
    """Let only principals of `role` reach the blueprint's endpoints (everyone, when authentication is off)."""

    @blueprint.before_request
    def _authorize():
        g.principal = authorized(role) if services().settings.auth_enabled else None


def principal() -> Principal | None:
    """Who is calling; None when authentication is off."""
    return g.get("principal")


def authorized(role: str) -> Principal:
    """The caller, when its bearer token is live and of `role`; else a 401, 403 or 429 JSON error."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized("send Authorization: Bearer <token>", None)
    caller = _principal_of(token)
    if caller is None:
        _count_failed_authentication()
        raise _unauthorized("the token is unknown or revoked", "invalid_token")
    if caller.role != role:
        raise ApiError(403, "forbidden", f"this endpoint is for {role}s; the token belongs to {caller.role} {caller.name}")
    return caller


def limit_sends(count: int = 1) -> None:
    """Count `count` sends against the caller's rate limit; 429 with Retry-After once it is spent."""
    caller = principal()
    if caller is not None and caller.role == CLIENT:
        _limit(f"send:{caller.name}", services().settings.send_rate_limit, count)


def _principal_of(token: str) -> Principal | None:
    """The principal of a token: the legacy OPERATOR_TOKEN, or one the registry knows."""
    legacy = services().settings.operator_token
    if legacy and hmac.compare_digest(token.encode("utf-8", "surrogatepass"), legacy.encode()):
        return LEGACY_OPERATOR
    try:
        return services().identities.principal_of(token)
    except StoreUnavailable as error:
        raise store_unavailable(services().settings.retry_after_s, error) from None


def _count_failed_authentication() -> None:
    """Count a failed authentication against the caller's address."""
    _limit(f"auth-failure:{request.remote_addr}", services().settings.auth_failure_limit, 1)


def _limit(key: str, limit: int, count: int) -> None:
    """Raise 429 when `key` has used up `limit` per minute; an unreachable store lets the request through."""
    try:
        wait = services().limiter.hit(key, limit, WINDOW_S, count)
    except StoreUnavailable as error:
        log.warning("rate limit not counted, the store did not answer: %s", error)
        return
    if wait is not None:
        raise ApiError(429, "rate_limited", f"too many requests; at most {limit} per minute",
                       headers={"Retry-After": str(max(1, round(wait)))})


def _unauthorized(message: str, error: str | None) -> ApiError:
    """A 401 with the WWW-Authenticate challenge (RFC 6750)."""
    challenge = 'Bearer realm="client-messaging"' + (f', error="{error}"' if error else "")
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": challenge})
