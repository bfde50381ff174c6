"""Start the real producer (gunicorn) and consumer processes against the test servers."""

import os
import sys
from pathlib import Path

from infra.process import ManagedProcess, free_ports, wait_until
from producer_service.config import DEFAULT_WORKERS

from .api import Api

BIN = Path(sys.executable).parent


def service_env(kafka: str, mongo: str, database: str, topics: tuple[str, str], **overrides) -> dict:
    """Environment for a service process of one isolated test stack."""
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka,
        "MONGODB_URI": mongo,
        "MONGODB_DATABASE": database,
        "MESSAGES_TOPIC": topics[0],
        "DEAD_LETTER_TOPIC": topics[1],
        "STORED_EVENTS_TOPIC": f"{topics[0]}-stored",
        "PYTHONUNBUFFERED": "1",
        # Load tests send far more per client than a person would; tests of the limit set their own.
        "SEND_RATE_LIMIT": "1000000",
    }
    env.update({name: str(value) for name, value in overrides.items()})
    return env


def start_producer(env: dict, logs: Path, tokens: dict | None = None,
                   workers: int = DEFAULT_WORKERS) -> tuple[ManagedProcess, Api]:
    """Start the producer under gunicorn (`workers` workers) on a free port and wait until /health answers."""
    port = free_ports(1)[0]
    argv = [str(BIN / "gunicorn"), "-c", "python:producer_service.entrypoints.gunicorn_config", "--bind", f"127.0.0.1:{port}"]
    process = ManagedProcess("producer", argv, logs / f"producer-{port}.log", env={**env, "PRODUCER_WORKERS": str(workers)})
    process.start()
    api = Api(f"http://127.0.0.1:{port}", tokens)
    # Each worker listens on a socket of its own (reuse_port) and takes connections while it still
    # loads: a run of answers on new connections means every worker has loaded (and read the
    # identities) before a test takes, say, the store away.
    answered = []
    wait_until(lambda: answered.append(api.get("/health").status == 200) or answered[-20:] == [True] * 20,
               timeout=60, interval=0.01, what="every producer worker's /health", process=process)
    return process, api


def start_operator(env: dict, logs: Path, tokens: dict | None = None) -> tuple[ManagedProcess, Api]:
    """Start `consumer-service operator` (the dead-letter API and console) on a free port; wait until /health answers."""
    port = free_ports(1)[0]
    process = ManagedProcess("operator", [str(BIN / "consumer-service"), "operator"], logs / f"operator-{port}.log",
                             env={**env, "OPERATOR_BIND": f"127.0.0.1:{port}"})
    process.start()
    api = Api(f"http://127.0.0.1:{port}", tokens)
    wait_until(lambda: api.get("/health").status == 200, timeout=60, interval=0.05, what="the operator server's /health",
               process=process)
    return process, api


def start_consumer(env: dict, client: str, logs: Path, name: str | None = None) -> ManagedProcess:
    """Start `consumer-service run --client CLIENT`; the caller waits on what it needs."""
    name = name or f"consumer-{client.replace('*', 'all')}"
    process = ManagedProcess(name, [str(BIN / "consumer-service"), "run", "--client", client], logs / f"{name}.log", env=env)
    process.start()
    return process
