"""Who is calling: clients, operators and metrics readers, their bearer tokens, and what each may do."""

import hashlib
import secrets
from dataclasses import dataclass
from typing import Protocol

CLIENT = "client"
OPERATOR = "operator"
METRICS = "metrics"  # reads GET /metrics and nothing else (a scraper's credential)
TOKEN_BYTES = 32  # 256 bits
# The operator whoever holds OPERATOR_TOKEN acts as; no registered operator may take the name.
OPERATOR_TOKEN_NAME = "OPERATOR_TOKEN"
MIN_OPERATOR_TOKEN_CHARS = 32


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: a client (sends and reads as itself), an operator or a metrics reader."""

    role: str
    name: str


class AlreadyRegistered(Exception):
    """A client or operator of that name exists already."""


class NotRegistered(Exception):
    """No client or operator of that name (or no such token)."""


def new_token() -> tuple[str, str]:
    """A fresh (token id, token): the id names it in lists and revocations, the token is shown once."""
    return secrets.token_hex(6), secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    """What is stored of a token: its SHA-256 (tokens are random, so no salt or stretching is needed)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class Identities(Protocol):
    """The registry of clients and operators, as the API consults it on every request."""

    def principal_of(self, token: str) -> Principal | None:
        """The live principal a token belongs to, or None when it is unknown or revoked."""

    def principal_of_hash(self, hashed: str) -> Principal | None:
        """The live principal whose token has this hash, or None."""

    def is_client(self, name: str) -> bool:
        """Tell whether a client of that name is registered and not revoked."""
