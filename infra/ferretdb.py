"""Build (from the Go module proxy) and run FerretDB with its SQLite backend."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from infra.cache import atomic_install, cache_dir
from infra.process import LocalServer, make_private, port_open, private_dir, require_tool, run

log = logging.getLogger("infra")

FERRETDB_MODULE = "github.com/FerretDB/FerretDB"
FERRETDB_VERSION = "v1.24.2"
# Applied to FerretDB's source before it is built; the build is cached under a name that includes
# their hash, so a binary built without (or with other) patches is built again.
PATCHES = sorted((Path(__file__).parent / "patches").glob("ferretdb-*.patch"))


def build_name() -> str:
    """The cached build's name: the version and the hash of the patches applied to it."""
    digest = hashlib.sha256(b"".join(patch.read_bytes() for patch in PATCHES)).hexdigest()[:12]
    return f"{FERRETDB_VERSION}-{digest}"


def _go_env(work: Path) -> dict[str, str]:
    """Return the environment for go commands: throwaway caches under `work`, no cgo."""
    env = dict(os.environ)
    env.update(
        {
            "CGO_ENABLED": "0",
            # Only the binary is kept: the module and build caches would add ~1 GB to the cache.
            "GOMODCACHE": str(work / "gomod"),
            "GOCACHE": str(work / "gocache"),
            # -modcacherw lets the temporary module cache be deleted like any directory.
            "GOFLAGS": "-modcacherw -buildvcs=false",
            "GOWORK": "off",
            # Never fetch another toolchain; go.mod asks for 1.24, which the local go must meet.
            "GOTOOLCHAIN": "local",
            "HOME": env.get("HOME", str(work)),
        }
    )
    return env


def install_ferretdb() -> Path:
    """Return the path of the ferretdb binary, building it with the local Go on first use."""
    target = cache_dir() / "ferretdb" / build_name()
    return atomic_install(target, _build_ferretdb, "ferretdb") / "ferretdb"


def _build_ferretdb(dest: Path) -> None:
    """Download FerretDB's module source and build cmd/ferretdb into dest."""
    go = require_tool("go", "Go >= 1.24 is needed once to build FerretDB")
    log.info("building FerretDB %s (takes a minute or two the first time)", FERRETDB_VERSION)
    with tempfile.TemporaryDirectory(prefix="infra-ferretdb-") as tmp:
        work = Path(tmp)
        env = _go_env(work)
        info = json.loads(
            run(
                [go, "mod", "download", "-json", f"{FERRETDB_MODULE}@{FERRETDB_VERSION}"],
                what="go mod download FerretDB",
                env=env,
                cwd=work,
            )
        )
        src = work / "src"
        shutil.copytree(info["Dir"], src)
        for path in [src, *src.rglob("*")]:
            path.chmod(path.stat().st_mode | 0o200)
        # The module zip lacks build/version/version.txt, which FerretDB's own main embeds and
        # insists on at start-up ("Invalid build/version/version.txt file content").
        (src / "build" / "version" / "version.txt").write_text(f"{FERRETDB_VERSION}\n")
        apply_patches(src)
        run(
            [go, "build", "-trimpath", "-o", str(dest / "ferretdb"), "./cmd/ferretdb"],
            what="go build FerretDB",
            env=env,
            cwd=src,
        )
    version = run([str(dest / "ferretdb"), "--version"], what="ferretdb --version")
    if FERRETDB_VERSION not in version:
        raise RuntimeError(f"built ferretdb reports an unexpected version:\n{version}")


def apply_patches(src: Path) -> None:
    """Apply each patch to FerretDB's source, or stop with one line naming the patch that no longer applies."""
    git = require_tool("git", "git applies the project's patches to FerretDB's source")
    for patch in PATCHES:
        try:
            run([git, "apply", "--check", "-p1", str(patch)], what=f"check {patch.name}", cwd=src)
        except RuntimeError as error:
            raise RuntimeError(f"{patch.name} no longer applies to FerretDB {FERRETDB_VERSION}: update or drop it "
                               f"({error})") from None
        run([git, "apply", "-p1", str(patch)], what=f"apply {patch.name}", cwd=src)
        log.info("applied %s to FerretDB %s", patch.name, FERRETDB_VERSION)


class FerretDBServer(LocalServer):
    """A FerretDB process speaking the MongoDB wire protocol, storing data in SQLite files."""

    name = "FerretDB"

    def __init__(self, port: int, data_dir: Path) -> None:
        """Configure the server; nothing runs until start()."""
        super().__init__(data_dir)
        self.port = port
        self.sqlite_dir = self.data_dir / "sqlite"
        self.state_dir = self.data_dir / "state"

    @property
    def uri(self) -> str:
        """Return the MongoDB connection URI, e.g. 'mongodb://127.0.0.1:27017/'."""
        return f"mongodb://127.0.0.1:{self.port}/"

    def start(self, timeout: float = 30.0) -> None:
        """Start FerretDB and wait until it answers a ping."""
        if self.alive:
            return
        if port_open(self.port):
            raise RuntimeError(f"port {self.port} is already in use")
        if any(char in str(self.sqlite_dir) for char in "?#%"):
            # The path goes into a file: URL that SQLite parses; these would be misread.
            raise ValueError(f"FerretDB data dir must not contain '?', '#' or '%': {self.data_dir}")
        binary = install_ferretdb()
        make_private(self.data_dir)
        private_dir(self.sqlite_dir)
        private_dir(self.state_dir)
        self._launch(
            [
                str(binary),
                "--handler=sqlite",
                f"--sqlite-url=file:{self.sqlite_dir}/",
                f"--listen-addr=127.0.0.1:{self.port}",
                f"--state-dir={self.state_dir}",
                "--telemetry=disable",
                "--debug-addr=-",
                "--log-level=warn",
            ],
            self.uri, timeout, interval=0.1,
        )

    def _ready(self) -> bool:
        """Return True once the port accepts and (if pymongo exists) a ping succeeds."""
        if not port_open(self.port):
            return False
        try:
            from pymongo import MongoClient
        except ImportError:
            return True
        client: MongoClient[dict[str, Any]] = MongoClient(self.uri, serverSelectionTimeoutMS=500, connectTimeoutMS=500)
        try:
            client.admin.command("ping")
            return True
        finally:
            client.close()
