"""Reading settings from environment variables, with one clear error per bad value.

Each service reads its environment in one module (producer_service/config.py, consumer_service/config.py) with
these readers; every entrypoint turns a bad value into one line and exit status 2 with `exit_2_on_bad_setting`.
"""

import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager


class ConfigError(ValueError):
    """A configuration variable has a value the service cannot use."""

    def __init__(self, name: str, problem: str):
        super().__init__(f"configuration error: {name} {problem}")
        self.name = name


@contextmanager
def exit_2_on_bad_setting() -> Iterator[None]:
    """Stop the process when the block raises ConfigError: its one line on stderr, exit status 2."""
    try:
        yield
    except ConfigError as error:
        print(str(error), file=sys.stderr, flush=True)
        sys.exit(2)


def read_str(env: Mapping[str, str], name: str, default: str) -> str:
    """Read a non-empty string variable."""
    value = env.get(name, default).strip()
    if not value:
        raise ConfigError(name, "must not be empty")
    return value


def read_int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    """Read an integer variable no smaller than `minimum`."""
    return _read_number(env, name, default, minimum, int, "a whole number")


def read_float(env: Mapping[str, str], name: str, default: float, minimum: float = 0.0) -> float:
    """Read a number variable no smaller than `minimum`."""
    return _read_number(env, name, default, minimum, float, "a number")


def _read_number(env: Mapping[str, str], name: str, default, minimum, parse, kind: str):
    """Read a number with `parse`, naming the variable when it is not one or is too small."""
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = parse(raw)
    except ValueError:
        raise ConfigError(name, f"must be {kind}, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(name, f"must be at least {minimum}, got {value}")
    return value


def read_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    """Read a yes/no variable (true/false, yes/no, 1/0)."""
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(name, f"must be true or false, got {raw!r}")


def read_secret(env: Mapping[str, str], name: str, min_length: int) -> str | None:
    """Read an optional secret of at least `min_length` characters; None when unset (the value is never echoed)."""
    value = env.get(name, "").strip()
    if value and len(value) < min_length:
        raise ConfigError(name, f"must be at least {min_length} characters (got {len(value)}); "
                                "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'")
    return value or None


def read_auto_bool(env: Mapping[str, str], name: str) -> bool | None:
    """Read `auto` (None: decided per request), or a yes/no variable."""
    return None if env.get(name, "").strip().lower() in ("", "auto") else read_bool(env, name, False)


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def read_log_level(env: Mapping[str, str], name: str, default: str) -> str:
    """Read a Python logging level name."""
    value = env.get(name, default).strip().upper() or default
    if value not in LOG_LEVELS:
        raise ConfigError(name, f"must be one of {', '.join(LOG_LEVELS)}, got {value!r}")
    return value


LOG_FORMATS = ("json", "text")


def read_log_format(env: Mapping[str, str]) -> str:
    """LOG_FORMAT: `json` (the default) or `text`; ConfigError otherwise."""
    value = env.get("LOG_FORMAT", "json").strip().lower() or "json"
    if value not in LOG_FORMATS:
        raise ConfigError("LOG_FORMAT", f"must be one of {', '.join(LOG_FORMATS)}, got {value!r}")
    return value
