"""Who may call: bearer tokens for scripts, session cookies with CSRF tokens for pages, roles per blueprint."""

import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

from flask import Blueprint, current_app, g, request
from marshmallow import RAISE, Schema, fields, validate

from shared_domain.availability import StoreUnavailable
from shared_domain.clock import to_iso, utc_now
from shared_domain.identity import OPERATOR, OPERATOR_TOKEN_NAME, Identities, Principal, token_hash
from shared_domain.session import Session, Sessions, new_secret

from .bodies import json_body, load_body
from .errors import ApiError, store_unavailable
from .local_windows import LocalWindows
from .responses import no_content

log = logging.getLogger(__name__)
EXTENSION = "access"
# Whoever holds OPERATOR_TOKEN: an operator of its own name, told apart from every registered one in the history.
TOKEN_OPERATOR = Principal(OPERATOR, OPERATOR_TOKEN_NAME)
WINDOW_S = 60
CSRF_HEADER = "X-CSRF-Token"
HOST_PREFIX = "__Host-"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
STORE_DOWN_WARNED = "warned:store-down"  # the key of the once-a-minute warning that the store does not count


class RateLimiter(Protocol):
    """Counts hits per key in fixed windows, across every process of the service."""

    def hit(self, key: str, limit: int, window_s: int, cost: int = 1) -> float | None:
        """Count `cost` hits; None while within the limit, else the seconds until the window ends."""


@dataclass
class Access:
    """How one service tells who is calling, and which cookie carries its pages' sessions."""

    identities: Identities
    sessions: Sessions
    limiter: RateLimiter
    cookie_name: str
    enabled: bool = True
    operator_token: str | None = None
    retry_after_s: int = 5
    auth_failure_limit: int = 30
    session_ttl_s: int = 12 * 3600
    cookie_secure: bool | None = None  # None: as the request came, HTTPS or not (set True behind a TLS proxy)
    # Failed authentications by address, and rate limits while the store does not answer: in this process.
    local: LocalWindows = field(default_factory=LocalWindows)


def _cookie_secure(rules: "Access") -> bool:
    """Whether the session cookie is Secure: as configured, else when the request itself came over HTTPS."""
    return request.is_secure if rules.cookie_secure is None else rules.cookie_secure


def session_cookie() -> str:
    """The session cookie's name: `__Host-` prefixed when Secure, so no subdomain or plain-HTTP page can plant it."""
    rules = access()
    return f"{HOST_PREFIX}{rules.cookie_name}" if _cookie_secure(rules) else rules.cookie_name


def access() -> Access:
    """The access rules of the app handling the current request."""
    return current_app.extensions[EXTENSION]


def protect(blueprint: Blueprint, role: str | tuple[str, ...]) -> None:
    """Let only principals of `role` (or of one of several) reach the blueprint's endpoints (all, with auth off)."""

    @blueprint.before_request
    def _authorize():
        g.principal = authorized(role) if access().enabled else None


def principal() -> Principal | None:
    """Who is calling; None when authentication is off."""
    return g.get("principal")


def authorized(role: str | tuple[str, ...]) -> Principal:
    """The caller, by bearer token or session cookie, when live and of `role` (or one of several); else a 401/403/429.

    A write through a session must carry the session's CSRF token in the X-CSRF-Token header.
    """
    header = request.headers.get("Authorization")
    if header is not None:
        caller, g.token_hash = bearer_caller(header, access(), request.remote_addr)
    elif request.cookies.get(session_cookie()):
        session = _session()
        caller = _live_principal(session)
        if caller is None:
            raise _unauthorized("the session's token was revoked; sign in again", "invalid_token")
        g.session_id = request.cookies[session_cookie()]
        if request.method not in SAFE_METHODS and not _csrf_matches(session):
            raise ApiError(403, "csrf_failed", f"a write through a session needs its CSRF token in {CSRF_HEADER}")
    else:
        raise _unauthorized("send Authorization: Bearer <token>, or sign in", None)
    return of_role(caller, role)


def of_role(caller: Principal, role: str | tuple[str, ...]) -> Principal:
    """The caller when of `role` (or of one of several); else a 403."""
    roles = (role,) if isinstance(role, str) else role
    if caller.role not in roles:
        allowed = f"{role}s" if isinstance(role, str) else f"the roles {', '.join(roles)}"
        raise ApiError(403, "forbidden", f"this endpoint is for {allowed}; the caller is {caller.role} {caller.name}")
    return caller


def page_session(role: str) -> Session | None:
    """The live session of `role` a page request carries, or None (the page then offers to sign in)."""
    if not access().enabled or not request.cookies.get(session_cookie()):
        return None
    try:
        session = _session()
        caller = _live_principal(session)
    except ApiError:
        return None
    return session if caller is not None and caller.role == role else None


def still_allowed() -> Callable[[], bool]:
    """For a long-lived answer (a stream): a check, usable outside the request, that its caller may still read.

    False once the bearer token is revoked, or the session ended or its token was revoked.
    """
    rules, session_id, hashed = access(), g.get("session_id"), g.get("token_hash")

    def check() -> bool:
        try:
            if session_id is not None:
                session = rules.sessions.find(session_id)
                return session is not None and _live_principal(session, rules) is not None
            return hashed is None or _principal_of_hash(hashed, rules) is not None
        except (ApiError, StoreUnavailable):
            return True  # a store that does not answer ends no stream; the next check decides
    return check


def _live_principal(session: Session, rules: "Access | None" = None) -> Principal | None:
    """The principal of a session while the token it signed in with is live."""
    caller = _principal_of_hash(session.token_hash, rules)
    return caller if caller == Principal(session.role, session.name) else None


def spend(key: str, limit: int, count: int = 1, rules: Access | None = None) -> None:
    """Raise 429 when `key` has used up `limit` per minute (under the current app's `rules` unless given).

    While the store does not answer, each process counts on its own: the limit is then at most
    `limit` per process, bounded rather than lifted, and no request waits on the store.
    """
    rules = rules or access()
    try:
        wait = rules.limiter.hit(key, limit, WINDOW_S, count)
    except StoreUnavailable as error:
        if rules.local.hit(STORE_DOWN_WARNED, 1) is None:  # once a minute, not once a request
            log.warning("rate limits counted in this process only, the store did not answer: %s", error)
        wait = rules.local.hit(f"store-down:{key}", limit, count)
    if wait is not None:
        raise _too_many(f"too many requests; at most {limit} per minute", wait)


def _too_many(message: str, wait: float) -> ApiError:
    """A 429 saying when to try again."""
    return ApiError(429, "rate_limited", message, headers={"Retry-After": str(max(1, round(wait)))})


def session_blueprint(role: str) -> Blueprint:
    """POST /session signs a principal of `role` in with its token, GET tells who is signed in, DELETE signs out."""
    blueprint = Blueprint(f"session_{role}", __name__)

    @blueprint.before_request
    def _only_with_authentication():
        if not access().enabled:
            raise ApiError(409, "authentication_off", "sessions need authentication, which is off in this service")

    @blueprint.post("/session")
    def sign_in():
        """Check a name and its token; answer 201 with the session's CSRF token and set the session cookie."""
        name, token = _credentials(json_body())
        _refuse_when_over_failure_limit(access(), request.remote_addr)
        caller = _principal_of(token)
        if caller is None or caller.role != role or caller.name != name:
            _count_failed_authentication(access(), request.remote_addr)
            raise ApiError(401, "sign_in_failed", f"no live {role} {name} with that token")
        session = Session(role, name, token_hash(token), new_secret(),
                          utc_now() + timedelta(seconds=access().session_ttl_s))
        try:
            session_id = access().sessions.start(session)
        except StoreUnavailable as error:
            raise store_unavailable(access().retry_after_s, error) from None
        response = current_app.json.response(_session_view(session))
        response.status_code = 201
        response.set_cookie(session_cookie(), session_id, max_age=access().session_ttl_s, path="/",
                            httponly=True, samesite="Strict", secure=_cookie_secure(access()))
        return response

    @blueprint.get("/session")
    def who():
        """The signed-in principal and its CSRF token; 401 when not signed in."""
        if not request.cookies.get(session_cookie()):
            raise _unauthorized("not signed in", None)
        return _session_view(_session())

    @blueprint.delete("/session")
    def sign_out():
        """End the session (CSRF token required) and clear the cookie; 204."""
        session_id = request.cookies.get(session_cookie())
        if session_id:
            if not _csrf_matches(_session()):
                raise ApiError(403, "csrf_failed", f"signing out needs the session's CSRF token in {CSRF_HEADER}")
            try:
                access().sessions.end(session_id)
            except StoreUnavailable as error:
                raise store_unavailable(access().retry_after_s, error) from None
        response = no_content()
        response.delete_cookie(session_cookie(), path="/", httponly=True, samesite="Strict",
                               secure=_cookie_secure(access()))
        return response

    return blueprint


class SignInSchema(Schema):
    """Body of POST /session: who signs in, and one of its tokens."""

    class Meta:
        unknown = RAISE

    name = fields.String(required=True, validate=validate.Length(1, 256))
    token = fields.String(required=True, validate=validate.Length(1, 256))


class SessionSchema(Schema):
    """Answer of POST and GET /session: who is signed in, the CSRF token its writes need, when it ends."""

    class Meta:
        unknown = RAISE

    name = fields.String(required=True)
    role = fields.String(required=True)
    csrfToken = fields.String(required=True)
    expiresAt = fields.DateTime(required=True)


def _credentials(body) -> tuple[str, str]:
    """The `name` and `token` of a sign-in body, or a 400 naming what is wrong."""
    loaded = load_body(SignInSchema(), body)
    return loaded["name"], loaded["token"]


def _session_view(session: Session) -> dict:
    """A session as its page sees it."""
    return {"name": session.name, "role": session.role, "csrfToken": session.csrf_token,
            "expiresAt": to_iso(session.expires_at)}


def _session() -> Session:
    """The live session of the request's cookie, or a 401."""
    try:
        session = access().sessions.find(request.cookies[session_cookie()])
    except StoreUnavailable as error:
        raise store_unavailable(access().retry_after_s, error) from None
    if session is None:
        raise _unauthorized("the session has ended; sign in again", "invalid_token")
    return session


def _csrf_matches(session: Session) -> bool:
    """Tell whether the request carries the session's CSRF token."""
    given = request.headers.get(CSRF_HEADER, "")
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), session.csrf_token.encode())


def bearer_caller(header: str, rules: Access, address: str | None) -> tuple[Principal, str]:
    """The principal of an Authorization: Bearer header and its token's hash, or a 401 (counted against the
    caller's `address`)."""
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized("send Authorization: Bearer <token>", None)
    _refuse_when_over_failure_limit(rules, address)
    hashed = token_hash(token)
    caller = _principal_of_hash(hashed, rules)
    if caller is None:
        _count_failed_authentication(rules, address)
        raise _unauthorized("the token is unknown or revoked", "invalid_token")
    return caller, hashed


def _principal_of(token: str) -> Principal | None:
    """The principal of a token: OPERATOR_TOKEN's, or one the registry knows."""
    return _principal_of_hash(token_hash(token))


def _principal_of_hash(hashed: str, rules: Access | None = None) -> Principal | None:
    """The principal whose token has this hash: OPERATOR_TOKEN's, or one the registry knows."""
    rules = rules or access()
    if rules.operator_token and hmac.compare_digest(hashed, token_hash(rules.operator_token)):
        return TOKEN_OPERATOR
    try:
        return rules.identities.principal_of_hash(hashed)
    except StoreUnavailable as error:
        raise store_unavailable(rules.retry_after_s, error) from None


def _refuse_when_over_failure_limit(rules: Access, address: str | None) -> None:
    """A 429, before any token is compared, for an address that failed to authenticate too often this minute.

    Counted in each process's memory: a dictionary lookup, the same whether or not the store
    answers; with W processes an address gets at most W x AUTH_FAILURE_LIMIT tries a minute.
    """
    wait = rules.local.over(f"auth-failure:{address}", rules.auth_failure_limit)
    if wait is not None:
        raise _too_many(f"too many failed authentications; at most {rules.auth_failure_limit} per minute", wait)


def _count_failed_authentication(rules: Access, address: str | None) -> None:
    """Count a failed authentication against the caller's address."""
    rules.local.hit(f"auth-failure:{address}", rules.auth_failure_limit)


def _unauthorized(message: str, error: str | None) -> ApiError:
    """A 401 with the WWW-Authenticate challenge (RFC 6750)."""
    challenge = 'Bearer realm="client-messaging"' + (f', error="{error}"' if error else "")
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": challenge})
