"""`make run`: Kafka, FerretDB, the producer under gunicorn, one consumer per example client and the operator server.

A part that dies is started again after 1, 2, 4 ... s; one that keeps dying soon after each start
stops everything. Environment variables KAFKA_BOOTSTRAP_SERVERS and MONGODB_URI point the services
at existing servers instead of starting local ones (a store named so must answer a ping first, or
make run exits 2); the RUN_* ones move ports and data (run_settings), and RUN_KAFKA_SECURITY=sasl_ssl
makes the broker started here serve SASL_SSL only; RUN_KAFKA_BROKERS=3 starts a cluster of three nodes instead of
one broker, each node a part of its own. Ctrl-C or SIGTERM stops everything this started.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import NoReturn

from infra.ferretdb import FerretDBServer
from infra.identities import OPERATOR, ensure_tokens
from infra.kafka import KafkaServer, UnsecuredStorage
from infra.kafka_cluster import KafkaCluster
from infra.process import ManagedProcess, port_open, private_dir, run, wait_until, write_private
from infra.run_settings import RunSettings, hide_secrets, mask_password, read_run_settings
from infra.supervisor import CrashLoop, Part, Supervisor
from shared_adapters.kafka_connection import NAMED
from shared_domain.config import ConfigError

BIN = Path(sys.executable).parent
KAFKA_SECURITY_VARIABLES = (*NAMED, "KAFKA_SASL_PASSWORD_FILE")


class Stop(BaseException):
    """Raised in the main thread by SIGINT/SIGTERM or when the parent goes away."""


class StoreUnreachable(Exception):
    """The store MONGODB_URI names did not answer a ping in time."""


def main() -> int:
    """Start everything, print how to use it, and keep it running until told to stop."""
    servers, services = [], []
    _install_signal_handlers()
    try:
        settings = read_run_settings(os.environ)
        for directory in (settings.run_dir, settings.logs, settings.data_dir):
            private_dir(directory)
        metrics_ports = {client: settings.consumer_metrics_port + n for n, client in enumerate(settings.clients)}
        for bind, variable in ((settings.producer_bind, "PRODUCER_BIND"), (settings.operator_bind, "OPERATOR_BIND"),
                               *((f"127.0.0.1:{port}", "RUN_CONSUMER_METRICS_PORT") for port in metrics_ports.values())):
            _check_port(bind, variable)
        if settings.mongodb_uri:
            _check_store(settings.mongodb_uri, settings.mongodb_ping_timeout)
        env, kafka = _start_servers(settings, servers)
        run([str(BIN / "consumer-service"), "create-topics"], "creating topics", env=env, timeout=120)
        # Data kept from before the conversation views existed gets them once, before any projector writes them.
        run([str(BIN / "consumer-service"), "rebuild-views", "--if-missing"], "building the conversation views", env=env,
            timeout=600)
        tokens = ensure_tokens(settings.clients, env, settings.data_dir / "tokens.json", settings.tokens_env_path)
        services += [_service(f"consumer-{client}", ["consumer-service", "run", "--client", client],
                              {**env, "CONSUMER_HEALTH_PORT": str(metrics_ports[client])}, settings.logs)
                     for client in settings.clients]
        services.append(_service("producer", ["gunicorn", "-c", "python:producer_service.entrypoints.gunicorn_config",
                                              "--bind", settings.producer_bind], env, settings.logs))
        services.append(_service("operator", ["consumer-service", "operator"],
                                 {**env, "OPERATOR_BIND": settings.operator_bind}, settings.logs))
        base = f"http://{settings.producer_bind}"
        wait_until(lambda: _ready(base), timeout=60, what="producer /ready", process=services[-2])
        console = f"http://{settings.operator_bind}"
        wait_until(lambda: _ready(console, "/health"), timeout=60, what="operator server /health", process=services[-1])
        _print_usage(base, console, settings, tokens, metrics_ports, _describe_kafka(settings, kafka, env),
                     _describe_store(settings))
        _keep_running(servers + services, settings.pids_path)
    except Stop as reason:
        print(f"\nstopping ({reason}) ...", flush=True)
        return 0
    except (StoreUnreachable, UnsecuredStorage, ConfigError) as error:
        print(f"make run cannot go on: {error}", file=sys.stderr, flush=True)
        return 2
    except CrashLoop as error:
        print(f"\n{error}", file=sys.stderr, flush=True)
        return 1
    except (RuntimeError, TimeoutError) as error:
        print(f"\nmake run cannot go on: {error}\n(servers already running elsewhere can be used instead: "
              "set KAFKA_BOOTSTRAP_SERVERS and MONGODB_URI)", file=sys.stderr, flush=True)
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        # Services first, so consumers can leave their groups while Kafka is still up; then the servers, Kafka's
        # nodes together (one stopped after the others would find no quorum for its controlled shutdown).
        _stop_together(services)
        _stop_together(servers)
        if servers or services:
            print("all processes stopped", flush=True)


def _stop_together(parts: list) -> None:
    """Stop every part at once and wait until all are gone."""
    stoppers = [threading.Thread(target=part.stop) for part in parts]
    for stopper in stoppers:
        stopper.start()
    for stopper in stoppers:
        stopper.join()


def _check_port(bind: str, variable: str) -> None:
    """Refuse to start anything when a service's address is taken."""
    host, _, port = bind.rpartition(":")
    if port_open(int(port), host or "127.0.0.1"):
        raise RuntimeError(f"{bind} is already in use; stop what listens there, or set {variable}")


def _check_store(uri: str, timeout: float) -> None:
    """Raise StoreUnreachable unless the store at `uri` answers a ping within `timeout` seconds."""
    from pymongo import MongoClient
    from pymongo.errors import PyMongoError

    limit = max(int(timeout * 1000), 1)
    try:
        # Only this client's timeouts are set here; the services get the URI as it is.
        with MongoClient(uri, serverSelectionTimeoutMS=limit, connectTimeoutMS=limit, socketTimeoutMS=limit) as client:
            client.admin.command("ping")
    except (PyMongoError, ValueError, TypeError) as error:
        raise StoreUnreachable(f"the store at MONGODB_URI ({mask_password(uri)}) did not answer a ping within "
                               f"{timeout:g}s: {_short_reason(error, uri)}; start it or fix the URI, or unset "
                               "MONGODB_URI to run FerretDB here") from None


def _short_reason(error: Exception, uri: str) -> str:
    """The gist of a driver error on one line, without the URI's secrets."""
    text = str(error).splitlines()[0] if str(error).strip() else ""
    for tail in (" (configured timeouts", ", Timeout:", ", full error:"):
        text = text.split(tail)[0]
    return hide_secrets(text.strip()[:300] or type(error).__name__, uri)


def _describe_store(settings: RunSettings) -> str:
    """Which store the services use, for the banner (the password masked)."""
    if settings.mongodb_uri:
        where = f"MongoDB at {mask_password(settings.mongodb_uri)} (MONGODB_URI; not started here)"
    else:
        where = f"FerretDB on 127.0.0.1:{settings.mongo_port} (started here, data in {settings.data_dir / 'ferretdb'})"
    return f"{where}, database {settings.mongodb_database}"


def _describe_kafka(settings: RunSettings, kafka: KafkaServer | KafkaCluster | None, env: dict) -> str:
    """Which broker the services use and how they reach it, for the banner (never the password)."""
    if kafka is None:
        return f"{env['KAFKA_BOOTSTRAP_SERVERS']} (KAFKA_BOOTSTRAP_SERVERS; not started here)"
    shape = (f"a cluster of {len(kafka.nodes)}, {kafka.listener}, bootstrap" if isinstance(kafka, KafkaCluster)
             else f"{kafka.listener} on")
    where = f"{shape} {kafka.bootstrap_servers} (started here, data in {kafka.data_dir})"
    if kafka.credentials is None:
        return where
    return (f"{where}, SCRAM-SHA-512 user {kafka.credentials.username}\n"
            f"         CA certificate {kafka.credentials.ca_path}, password file {kafka.credentials.password_path}\n"
            f"         (`. {settings.kafka_env_path}` exports the KAFKA_* settings for other clients, "
            "consumer-service dlq among them)")


def _start_servers(settings: RunSettings, servers: list) -> tuple[dict, KafkaServer | KafkaCluster | None]:
    """Start Kafka and FerretDB unless the environment names existing ones; return the services' env and the Kafka."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    kafka: KafkaServer | KafkaCluster | None = None
    if not env.get("KAFKA_BOOTSTRAP_SERVERS"):
        kafka = _start_kafka(settings, servers)
        # The broker started here decides how it is reached, whatever KAFKA_* security the shell exports.
        for variable in KAFKA_SECURITY_VARIABLES:
            env.pop(variable, None)
        env.update({"KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers, **kafka.client_env()})
        _write_kafka_env(settings.kafka_env_path, env if kafka.credentials else None)
    if settings.mongodb_uri:
        print(f"using the store at MONGODB_URI: {mask_password(settings.mongodb_uri)} (it answered a ping)", flush=True)
    else:
        mongo = FerretDBServer(settings.mongo_port, settings.data_dir / "ferretdb")
        servers.append(mongo)
        print(f"starting FerretDB (MongoDB protocol) on 127.0.0.1:{mongo.port} ...", flush=True)
        mongo.start()
        env["MONGODB_URI"] = mongo.uri
    return env, kafka


def _start_kafka(settings: RunSettings, servers: list) -> KafkaServer | KafkaCluster:
    """Start one broker, or a cluster whose every node is a part of its own."""
    if settings.kafka_brokers == 1:
        kafka = KafkaServer(settings.kafka_port, settings.kafka_controller_port, settings.kafka_data_dir,
                            settings.kafka_security)
        servers.append(kafka)
        print(f"starting Kafka ({kafka.listener}) on {kafka.bootstrap_servers} ...", flush=True)
        kafka.start()
        return kafka
    cluster = KafkaCluster(settings.kafka_ports, settings.kafka_data_dir, settings.kafka_security)
    servers.extend(cluster.nodes)
    print(f"starting Kafka ({cluster.listener}), a cluster of {len(cluster.nodes)} on {cluster.bootstrap_servers} ...",
          flush=True)
    cluster.start()
    return cluster


def _write_kafka_env(path: Path, env: dict | None) -> None:
    """Write the shell file exporting how to reach a secured broker, or remove an earlier run's."""
    if env is None:
        path.unlink(missing_ok=True)
        return
    names = ("KAFKA_BOOTSTRAP_SERVERS", *KAFKA_SECURITY_VARIABLES)
    write_private(path, "".join(f"export {name}={shlex.quote(env[name])}\n" for name in names if name in env))


def _service(name: str, argv: list[str], env: dict, logs: Path) -> ManagedProcess:
    """Start a service process whose output is echoed here with its name in front."""
    process = ManagedProcess(name, [str(BIN / argv[0]), *argv[1:]], logs / f"{name}.log", env=env, private=True)
    log_start = process.log_path.stat().st_size if process.log_path.exists() else 0
    process.start()
    threading.Thread(target=_follow, args=(name, process.log_path, log_start), daemon=True).start()
    return process


def _follow(name: str, path: Path, offset: int) -> None:
    """Print lines appended to a log file, prefixed with the process name."""
    while not path.exists():
        time.sleep(0.2)
    with open(path, encoding="utf-8", errors="replace") as handle:
        handle.seek(offset)
        while True:
            line = handle.readline()
            if line:
                print(f"[{name}] {line}", end="", flush=True)
            else:
                time.sleep(0.2)


def _ready(base: str, path: str = "/ready") -> bool:
    """Tell whether a service's readiness path answers 200."""
    import urllib.request

    try:
        with urllib.request.urlopen(f"{base}{path}", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _print_usage(base: str, console: str, settings: RunSettings, tokens: dict[str, str],
                 metrics_ports: dict[str, int], kafka: str, store: str) -> None:
    """Print the pages with their demo sign-ins, and ready-to-paste curl examples carrying the tokens."""
    sender, recipient = (settings.clients * 2)[:2]

    def auth(name: str) -> str:
        return f"-H 'Authorization: Bearer {tokens.get(name, '<token>')}'"

    trace = f"follow-{uuid.uuid4().hex[:12]}"
    sign_ins = "\n".join(f"    {name} / {tokens.get(name, '<token>')}" for name in settings.clients)
    print(f"""
ready: producer on {base}, consumers for {', '.join(settings.clients)}, operator server on {console}; logs in {settings.logs}
kafka:   {kafka}
store:   {store}
chat:    {base}/  sign in as (client id / token):
{sign_ins}
console: {console}/  sign in as {OPERATOR} / {tokens.get(OPERATOR, '<token>')}
tokens: {', '.join(sorted(tokens))} (in {settings.tokens_env_path}: `. {settings.tokens_env_path}` exports them)
try: (the first in a terminal of its own shows {recipient}'s messages live)
  curl -sN {auth(recipient)} {base}/stream
  curl -s -X POST {base}/send-message {auth(sender)} -H 'Content-Type: application/json' \\
       -d '{{"to": "{recipient}", "message": "hello {recipient}"}}'
  curl -s {auth(recipient)} '{base}/messages?with={sender}'
  curl -s {auth(OPERATOR)} '{base}/failed-messages'
  curl -s -X POST {console}/failed-messages/replay {auth(OPERATOR)} -H 'Content-Type: application/json' \\
       -d '{{"filter": {{"to": "{recipient}"}}, "dryRun": true}}'
  curl -s {base}/ready
observe: (metrics, then every log line of one message, from the API to the store)
  curl -s {auth(OPERATOR)} {base}/metrics | grep -E '^(http_requests_total|kafka_publish_total)'
  curl -s http://127.0.0.1:{metrics_ports[recipient]}/metrics | grep -E '^consumer_records_total'
  curl -s -X POST {base}/send-message {auth(sender)} -H 'X-Request-Id: {trace}' -H 'Content-Type: application/json' \\
       -d '{{"to": "{recipient}", "message": "follow me"}}'
  grep -h {trace} {settings.logs}/*.log | sort
Ctrl-C stops everything.
""", flush=True)


def _keep_running(parts: list, pids_path: Path) -> NoReturn:
    """Restart parts as they die, until Stop (a signal, or the parent gone) or CrashLoop ends it."""
    supervisor = Supervisor(parts, say=lambda line: print(line, flush=True),
                            on_start=lambda _part: _write_pids(parts, pids_path))
    _write_pids(parts, pids_path)
    parent = os.getppid()
    try:
        while True:
            if os.getppid() != parent:
                raise Stop("parent process exited")
            supervisor.check()
            time.sleep(0.5)
    finally:
        pids_path.unlink(missing_ok=True)


def _write_pids(parts: list[Part], path: Path) -> None:
    """Replace the file naming each part's current pid (for scripts and tests that look at the stack)."""
    partial = path.with_name(f".{path.name}.tmp")
    write_private(partial, json.dumps({part.name: part.pid for part in parts}, indent=1) + "\n")
    os.replace(partial, path)


def _install_signal_handlers() -> None:
    """Turn SIGINT and SIGTERM into Stop in the main thread."""
    def handler(signum, _frame):
        raise Stop(signal.Signals(signum).name)

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


if __name__ == "__main__":
    sys.exit(main())
