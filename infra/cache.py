"""Cache directory and locked, atomic installs for downloaded and built tools."""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger("infra")

CACHE_ENV = "CLIENT_MESSAGING_CACHE"


def cache_dir() -> Path:
    """Return the cache root: $CLIENT_MESSAGING_CACHE or ~/.cache/client-messaging."""
    override = os.environ.get(CACHE_ENV)
    root = Path(override) if override else Path.home() / ".cache" / "client-messaging"
    return root.expanduser().absolute()


@contextmanager
def file_lock(name: str) -> Iterator[None]:
    """Hold an exclusive flock on <cache>/locks/<name>.lock for the duration of the block."""
    lock_dir = cache_dir() / "locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_dir / f"{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def atomic_install(target: Path, build: Callable[[Path], None], lock_name: str) -> Path:
    """Ensure directory `target` exists, building it via `build(tmp_dir)` then renaming it."""
    if target.is_dir():
        return target
    with file_lock(lock_name):
        # Another process may have finished the install while we waited for the lock.
        if target.is_dir():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        # Leftovers of an install that was killed; safe to remove while we hold the lock.
        for stale in target.parent.glob(f".{target.name}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
        try:
            build(tmp)
            tmp.chmod(0o755)  # mkdtemp makes it 0700
            os.rename(tmp, target)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    log.info("installed %s", target)
    return target
