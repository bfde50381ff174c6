"""`make run` registers its example clients and an operator once, and keeps their tokens with its data."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from infra.process import run

BIN = Path(sys.executable).parent
OPERATOR = "operator"


def ensure_tokens(clients: list[str], env: dict, tokens_path: Path, env_path: Path) -> dict[str, str]:
    """{name: token} for the clients and the operator: those kept from an earlier run if still live, else new ones."""
    run([str(BIN / "producer-service"), "bootstrap", *clients, "--operator", OPERATOR, "--tokens-file", str(tokens_path),
         "--env-file", str(env_path)], "registering the clients", env=env, timeout=60)
    return json.loads(tokens_path.read_text())
