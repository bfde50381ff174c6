"""What `make run` starts and where: ports, data dir and consumers, from environment variables."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from infra.cache import cache_dir
from shared_domain.config import ConfigError, read_int, read_str


@dataclass(frozen=True)
class RunSettings:
    """The addresses, directories and clients of one `make run`."""

    clients: list[str]
    producer_bind: str
    operator_bind: str
    consumer_metrics_port: int  # the first consumer's /health, /ready and /metrics; the next one's is one above
    kafka_port: int
    kafka_controller_port: int
    mongo_port: int
    data_dir: Path
    run_dir: Path

    @property
    def logs(self) -> Path:
        """The directory of the services' log files."""
        return self.run_dir / "logs"

    @property
    def tokens_env_path(self) -> Path:
        """The shell file exporting the example clients' and the operator's tokens."""
        return self.run_dir / "tokens.env"

    @property
    def pids_path(self) -> Path:
        """The file naming the pid of every running part, rewritten whenever one starts."""
        return self.run_dir / "pids.json"


def read_run_settings(env: Mapping[str, str]) -> RunSettings:
    """Read the RUN_* variables, PRODUCER_BIND and OPERATOR_BIND; raise ConfigError naming the first bad one."""
    data_dir = env.get("RUN_DATA_DIR", "").strip()
    return RunSettings(
        clients=env.get("RUN_CLIENTS", "clientA clientB").split(),
        producer_bind=read_str(env, "PRODUCER_BIND", "127.0.0.1:8000"),
        operator_bind=read_str(env, "OPERATOR_BIND", "127.0.0.1:8081"),
        consumer_metrics_port=_port(env, "RUN_CONSUMER_METRICS_PORT", 9101),
        kafka_port=_port(env, "RUN_KAFKA_PORT", 9092),
        kafka_controller_port=_port(env, "RUN_KAFKA_CONTROLLER_PORT", 9093),
        mongo_port=_port(env, "RUN_MONGO_PORT", 27017),
        data_dir=Path(data_dir).expanduser().absolute() if data_dir else cache_dir() / "data" / "local",
        run_dir=Path(".run").absolute(),
    )


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    """Read a TCP port number."""
    port = read_int(env, name, default, minimum=1)
    if port > 65535:
        raise ConfigError(name, f"must be at most 65535, got {port}")
    return port
