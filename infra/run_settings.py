"""What `make run` starts and where: ports, data dir, consumers and store, from environment variables."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from infra.cache import cache_dir
from infra.kafka_security import PLAINTEXT, SASL_SSL, SECURITY_MODES
from shared_domain.config import ConfigError, read_float, read_int, read_str

MASK = "****"
# One broker, or a cluster whose controller quorum survives the loss of any one node.
KAFKA_BROKER_COUNTS = (1, 3)
# Connection-string options whose values are secrets: tlsCertificateKeyFilePassword and the like, and
# authMechanismProperties, which may carry an AWS session token.
SECRET_OPTIONS = ("password", "authmechanismproperties")


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
    mongodb_uri: str | None = None  # an existing store to use instead of starting FerretDB
    mongodb_database: str = "messaging"
    mongodb_ping_timeout: float = 5.0  # how long the store at mongodb_uri has to answer before make run gives up
    kafka_security: str = PLAINTEXT  # how the broker make run starts serves its clients: plaintext or sasl_ssl
    kafka_brokers: int = 1  # how many Kafka nodes make run starts: one, or a cluster of three

    @property
    def kafka_ports(self) -> list[tuple[int, int]]:
        """Each node's (client port, controller port): node n's are RUN_KAFKA_PORT and RUN_KAFKA_CONTROLLER_PORT + 2(n-1)."""
        return [(self.kafka_port + 2 * n, self.kafka_controller_port + 2 * n) for n in range(self.kafka_brokers)]

    @property
    def logs(self) -> Path:
        """The directory of the services' log files."""
        return self.run_dir / "logs"

    @property
    def kafka_data_dir(self) -> Path:
        """The started broker's data: a secured broker keeps its own, formatted with its SCRAM user, and so does a cluster."""
        name = "kafka" if self.kafka_security == PLAINTEXT else f"kafka-{self.kafka_security}"
        return self.data_dir / (name if self.kafka_brokers == 1 else f"{name}-cluster-{self.kafka_brokers}")

    @property
    def kafka_env_path(self) -> Path:
        """The shell file exporting what other Kafka clients need to reach a secured broker (no secret in it)."""
        return self.run_dir / "kafka.env"

    @property
    def tokens_env_path(self) -> Path:
        """The shell file exporting the example clients' and the operator's tokens."""
        return self.run_dir / "tokens.env"

    @property
    def pids_path(self) -> Path:
        """The file naming the pid of every running part, rewritten whenever one starts."""
        return self.run_dir / "pids.json"


def read_run_settings(env: Mapping[str, str]) -> RunSettings:
    """Read the RUN_* variables, PRODUCER_BIND, OPERATOR_BIND and the store's; raise ConfigError naming the first bad one."""
    data_dir = env.get("RUN_DATA_DIR", "").strip()
    kafka_port, kafka_controller_port = _port(env, "RUN_KAFKA_PORT", 9092), _port(env, "RUN_KAFKA_CONTROLLER_PORT", 9093)
    return RunSettings(
        clients=env.get("RUN_CLIENTS", "clientA clientB").split(),
        producer_bind=read_str(env, "PRODUCER_BIND", "127.0.0.1:8000"),
        operator_bind=read_str(env, "OPERATOR_BIND", "127.0.0.1:8081"),
        consumer_metrics_port=_port(env, "RUN_CONSUMER_METRICS_PORT", 9101),
        kafka_port=kafka_port,
        kafka_controller_port=kafka_controller_port,
        mongo_port=_port(env, "RUN_MONGO_PORT", 27017),
        data_dir=Path(data_dir).expanduser().absolute() if data_dir else cache_dir() / "data" / "local",
        run_dir=Path(".run").absolute(),
        mongodb_uri=env.get("MONGODB_URI") or None,
        mongodb_database=read_str(env, "MONGODB_DATABASE", "messaging"),
        mongodb_ping_timeout=read_float(env, "RUN_MONGODB_PING_TIMEOUT_S", 5.0, minimum=0.1),
        kafka_security=_kafka_security(env),
        kafka_brokers=_kafka_brokers(env, kafka_port, kafka_controller_port),
    )


def mask_password(uri: str) -> str:
    """The connection string with its password and secret option values replaced by ****, fit to print."""
    scheme, separator, rest = _split_scheme(uri)
    userinfo, at, hosts = rest.rpartition("@")  # the last '@': a password may hold an unescaped one
    if at:
        user, colon, _password = userinfo.partition(":")
        rest = f"{user}:{MASK}@{hosts}" if colon else f"{userinfo}@{hosts}"
    base, question, query = rest.partition("?")
    if question:
        rest = f"{base}?{''.join(_mask_option(part) for part in re.split(r'([&;])', query))}"
    return f"{scheme}{separator}{rest}"


def hide_secrets(text: str, uri: str) -> str:
    """`text` (say, a driver's error) with every secret of `uri`, raw or percent-decoded, replaced by ****."""
    userinfo, at, _hosts = _split_scheme(uri)[2].rpartition("@")
    secrets = [userinfo.partition(":")[2]] if at else []
    secrets += [value for name, _, value in (part.partition("=") for part in re.split(r"[&;]", uri.partition("?")[2]))
                if _is_secret(name)]
    for secret in sorted({form for secret in secrets for form in (secret, unquote(secret)) if form}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def _split_scheme(uri: str) -> tuple[str, str, str]:
    """('mongodb', '://', the rest), or ('', '', uri) when it has no scheme."""
    scheme, separator, rest = uri.partition("://")
    return (scheme, separator, rest) if separator else ("", "", uri)


def _mask_option(part: str) -> str:
    """One `name=value` option of a query string, its value masked if it is a secret."""
    name, equals, _value = part.partition("=")
    return f"{name}={MASK}" if equals and _is_secret(name) else part


def _is_secret(option: str) -> bool:
    """Whether a connection-string option holds a secret."""
    return any(word in option.lower() for word in SECRET_OPTIONS)


def _kafka_security(env: Mapping[str, str]) -> str:
    """Read RUN_KAFKA_SECURITY, which secures only a broker make run starts itself."""
    security = env.get("RUN_KAFKA_SECURITY", "").strip().lower() or PLAINTEXT
    if security not in SECURITY_MODES:
        raise ConfigError("RUN_KAFKA_SECURITY", f"must be one of {', '.join(SECURITY_MODES)}, "
                                                f"got {env['RUN_KAFKA_SECURITY']!r}")
    if security == SASL_SSL and env.get("KAFKA_BOOTSTRAP_SERVERS"):
        raise ConfigError("RUN_KAFKA_SECURITY", "secures the broker make run starts, but KAFKA_BOOTSTRAP_SERVERS "
                                                "names one it does not start: set KAFKA_SECURITY_PROTOCOL and the "
                                                "rest for that one")
    return security


def _kafka_brokers(env: Mapping[str, str], port: int, controller_port: int) -> int:
    """Read RUN_KAFKA_BROKERS, how many Kafka nodes make run starts, and check their ports fit."""
    raw = env.get("RUN_KAFKA_BROKERS", "").strip() or "1"
    if raw not in {str(count) for count in KAFKA_BROKER_COUNTS}:
        raise ConfigError("RUN_KAFKA_BROKERS", f"must be {' or '.join(map(str, KAFKA_BROKER_COUNTS))}, "
                                               f"got {env['RUN_KAFKA_BROKERS']!r}")
    brokers = int(raw)
    if brokers > 1 and env.get("KAFKA_BOOTSTRAP_SERVERS"):
        raise ConfigError("RUN_KAFKA_BROKERS", "sizes the Kafka make run starts, but KAFKA_BOOTSTRAP_SERVERS names one "
                                               "it does not start")
    clients, controllers = ([first + 2 * n for n in range(brokers)] for first in (port, controller_port))
    if set(clients) & set(controllers):
        raise ConfigError("RUN_KAFKA_CONTROLLER_PORT", f"collides with a Kafka client port: the nodes' client ports "
                                                       f"are {clients}, their controller ports {controllers}")
    if max(clients + controllers) > 65535:
        raise ConfigError("RUN_KAFKA_PORT", f"(or RUN_KAFKA_CONTROLLER_PORT) leaves no room for {brokers} nodes "
                                            "two ports apart")
    return brokers


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    """Read a TCP port number."""
    port = read_int(env, name, default, minimum=1)
    if port > 65535:
        raise ConfigError(name, f"must be at most 65535, got {port}")
    return port
