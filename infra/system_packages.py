"""Programs the project needs from the system (Debian packages): installed when missing and this user can."""

from __future__ import annotations

import os
import shutil
import subprocess


def ensure_program(names: tuple[str, ...], package: str, needed_by: str) -> str:
    """The path of the first of `names` found, after installing Debian's `package` when none is and root can."""
    found = _which(names)
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print(f"installing Debian's {package} for {needed_by} ...", flush=True)
        install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", package]
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        if subprocess.run(install, env=env, capture_output=True).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
            subprocess.run(install, env=env, capture_output=True, check=True)
        found = _which(names)
    if not found:
        raise RuntimeError(f"{needed_by} needs {names[0]}: install it with `sudo apt-get install {package}` "
                           "(Debian/Ubuntu)")
    return found


def ensure_chromium() -> str:
    """The system's Chromium, which the browser tests drive through Playwright."""
    return ensure_program(("chromium", "chromium-browser"), "chromium", "the browser tests")


def _which(names: tuple[str, ...]) -> str | None:
    """The path of the first program of `names` on PATH."""
    return next(filter(None, map(shutil.which, names)), None)
