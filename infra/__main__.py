"""Command line: `python -m infra install`, `python -m infra browser` and `python -m infra serve`."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from infra.cache import cache_dir
from infra.ferretdb import FerretDBServer, install_ferretdb
from infra.kafka import KafkaServer, class_archive, install_kafka
from infra.system_packages import ensure_chromium

log = logging.getLogger("infra")


class _Shutdown(BaseException):
    """Raised from the signal handler to unwind `serve` cleanly."""


def _on_signal(signum: int, frame: FrameType | None) -> None:
    """Turn SIGINT/SIGTERM into a _Shutdown exception in the main thread."""
    raise _Shutdown(signal.Signals(signum).name)


def cmd_install(args: argparse.Namespace) -> int:
    """Install Kafka and FerretDB (unless MONGODB_URI names a store) into the cache and print where they are."""
    began = time.monotonic()
    kafka_libs = install_kafka()
    print(f"kafka libs: {kafka_libs} ({time.monotonic() - began:.1f}s)", flush=True)
    began = time.monotonic()
    archive = class_archive()
    print(f"kafka class archive: {archive or 'unavailable'} ({time.monotonic() - began:.1f}s)", flush=True)
    if os.environ.get("MONGODB_URI"):
        # make run will use that store; anything that needs FerretDB later still builds it on first use.
        print("ferretdb:   not built (MONGODB_URI names the store)", flush=True)
        return 0
    began = time.monotonic()
    ferretdb = install_ferretdb()
    print(f"ferretdb:   {ferretdb} ({time.monotonic() - began:.1f}s)", flush=True)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Run Kafka and FerretDB in the foreground until SIGINT/SIGTERM."""
    data_dir = Path(args.data_dir) if args.data_dir else cache_dir() / "data" / "local"
    kafka = KafkaServer(args.kafka_port, args.kafka_controller_port, data_dir / "kafka")
    mongo = FerretDBServer(args.mongo_port, data_dir / "ferretdb")
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    code = 0
    try:
        kafka.start()
        print(f"kafka ready: {kafka.bootstrap_servers}", flush=True)
        mongo.start()
        print(f"mongodb (FerretDB) ready: {mongo.uri}", flush=True)
        while kafka.alive and mongo.alive:
            time.sleep(0.5)
        died = "kafka" if not kafka.alive else "ferretdb"
        log.error("%s exited unexpectedly; see logs in %s", died, data_dir)
        code = 1
    except _Shutdown as exc:
        log.info("received %s, stopping", exc)
    except (RuntimeError, TimeoutError) as exc:
        log.error("%s", exc)
        code = 1
    finally:
        # A second signal must not interrupt the clean stop; stop() escalates to SIGKILL itself.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        mongo.stop()
        kafka.stop()
    print("stopped", flush=True)
    return code


def cmd_browser(args: argparse.Namespace) -> int:
    """Install Debian's chromium when missing (and possible) and print where it is."""
    try:
        print(f"chromium:   {ensure_chromium()}", flush=True)
    except RuntimeError as error:
        print(str(error), file=sys.stderr, flush=True)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser for the CLI."""
    parser = argparse.ArgumentParser(prog="python -m infra", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    install = sub.add_parser("install", help="download/build Kafka and FerretDB into the cache")
    install.set_defaults(func=cmd_install)
    browser = sub.add_parser("browser", help="make sure the system's Chromium is there for the browser tests")
    browser.set_defaults(func=cmd_browser)
    serve = sub.add_parser("serve", help="run Kafka and FerretDB until interrupted")
    serve.add_argument("--kafka-port", type=int, default=9092)
    serve.add_argument("--kafka-controller-port", type=int, default=9093)
    serve.add_argument("--mongo-port", type=int, default=27017)
    serve.add_argument("--data-dir", help="default: <cache>/data/local (kept across runs)")
    serve.set_defaults(func=cmd_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run the chosen command."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    log.setLevel(logging.DEBUG if args.verbose else logging.INFO)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
