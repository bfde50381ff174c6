"""`make run` registers its example clients and an operator once, and keeps their tokens with its data."""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path

from infra.process import run

BIN = Path(sys.executable).parent
OPERATOR = "operator"


def ensure_tokens(clients: list[str], env: dict, tokens_path: Path) -> dict[str, str]:
    """{name: token} for the clients and the operator: kept from an earlier run, else registered now."""
    kept = json.loads(tokens_path.read_text()) if tokens_path.exists() else {}
    registered = _registered("clients", env) | _registered("operators", env)
    tokens = {name: token for name, token in kept.items() if name in registered}  # the store may be a new one
    for role, name in [*(("clients", client) for client in clients), ("operators", OPERATOR)]:
        if name not in tokens:
            token = _register(role, name, env)
            if token:
                tokens[name] = token
    tokens_path.parent.mkdir(parents=True, exist_ok=True)
    _write_private(tokens_path, json.dumps(tokens, indent=2))
    return tokens


def write_env_file(tokens: dict[str, str], path: Path) -> None:
    """Shell lines exporting each token (CLIENTA_TOKEN, OPS_TOKEN, ...) for scripts to source."""
    lines = [f"export {env_name(name)}={shlex.quote(token)}" for name, token in sorted(tokens.items())]
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_private(path, "\n".join(lines) + "\n")


def env_name(name: str) -> str:
    """The variable a token is exported as: CLIENTA_TOKEN for clientA, OPS_TOKEN for the operator."""
    return "OPS_TOKEN" if name == OPERATOR else f"{''.join(c for c in name.upper() if c.isalnum())}_TOKEN"


def _registered(role: str, env: dict) -> set[str]:
    """The names of the live clients or operators the store holds."""
    listing = json.loads(run([str(BIN / "producer-service"), role, "list"], f"listing {role}", env=env, timeout=60))
    return {entry["name"] for entry in listing if entry["revokedAt"] is None}


def _register(role: str, name: str, env: dict) -> str | None:
    """Register `name` and return its first token; a name taken already gets a new token; None if refused."""
    command = [str(BIN / "producer-service"), role]
    try:
        output = run([*command, "add", name], f"registering {name}", env=env, timeout=60)
    except RuntimeError as error:
        if "already registered" not in str(error):
            print(f"not registering {name}: {str(error).splitlines()[-1]}", flush=True)
            return None
        output = run([*command, "token", name, "--label", "make run"], f"a token for {name}", env=env, timeout=60)
    return json.loads(output)["token"]


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner may read."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
