"""How every Kafka client of a service connects: the brokers, security, and any other librdkafka property.

Every producer, consumer and admin client of both services is built from one KafkaConnection,
read once from the environment:
- KAFKA_BOOTSTRAP_SERVERS;
- KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD (or
  KAFKA_SASL_PASSWORD_FILE), KAFKA_SSL_CA_LOCATION;
- KAFKA_CONFIG_<property> for any other librdkafka property: the name after the prefix,
  lower-cased, with `_` for `.` and `__` for `_` (KAFKA_CONFIG_SSL_ENDPOINT__IDENTIFICATION__ALGORITHM
  is `ssl.endpoint.identification.algorithm`).
Secrets never appear in a repr or a log line.
"""

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

from shared_domain.config import ConfigError, read_str

PASS_THROUGH_PREFIX = "KAFKA_CONFIG_"
SECURITY_PROTOCOLS = ("plaintext", "ssl", "sasl_plaintext", "sasl_ssl")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER", "GSSAPI")
SECRET_WORDS = ("password", "secret", "key", "token", "jaas")
NAMED = {
    "KAFKA_SECURITY_PROTOCOL": "security.protocol",
    "KAFKA_SASL_MECHANISM": "sasl.mechanism",
    "KAFKA_SASL_USERNAME": "sasl.username",
    "KAFKA_SASL_PASSWORD": "sasl.password",
    "KAFKA_SSL_CA_LOCATION": "ssl.ca.location",
}
# Set by the services themselves: a pass-through may not change what their promises rest on.
OWNED = frozenset({"bootstrap.servers", "acks", "enable.idempotence", "partitioner", "enable.auto.commit",
                   "enable.auto.offset.store", "group.id", "logger"})


@dataclass(frozen=True)
class KafkaConnection:
    """The brokers and the librdkafka properties (security and pass-through) every client of a service uses."""

    bootstrap_servers: str
    properties: Mapping[str, str] = field(default_factory=dict)

    def config(self, **specific) -> dict:
        """A client configuration: these connection settings, then what the client itself needs."""
        return {"bootstrap.servers": self.bootstrap_servers, **self.properties,
                "logger": logging.getLogger("librdkafka"), "log.connection.close": False, **specific}

    def __repr__(self) -> str:
        shown = {name: "****" if is_secret(name) else value for name, value in self.properties.items()}
        return f"KafkaConnection({self.bootstrap_servers!r}, {shown})"

    __str__ = __repr__


def is_secret(name: str) -> bool:
    """Whether a librdkafka property holds a secret (passwords, keys, tokens, JAAS configs)."""
    return any(word in name.lower() for word in SECRET_WORDS) and not name.endswith(".location")


def read_kafka_connection(env: Mapping[str, str]) -> KafkaConnection:
    """Read the brokers, security settings and pass-through properties; ConfigError naming a bad variable."""
    properties: dict[str, str] = {}
    for variable, value in sorted(env.items()):
        if variable.startswith(PASS_THROUGH_PREFIX) and value.strip():
            properties[_property_name(variable)] = value.strip()
    for variable, name in NAMED.items():
        if env.get(variable, "").strip():
            properties[name] = env[variable].strip()
    if env.get("KAFKA_SASL_PASSWORD_FILE", "").strip():
        properties["sasl.password"] = _read_secret_file(env["KAFKA_SASL_PASSWORD_FILE"].strip())
    _check(properties)
    return KafkaConnection(read_str(env, "KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"), properties)


def _property_name(variable: str) -> str:
    """The librdkafka property a KAFKA_CONFIG_ variable names ('__' for '_', '_' for '.')."""
    raw = variable[len(PASS_THROUGH_PREFIX):]
    name = "_".join(part.replace("_", ".") for part in raw.split("__")).lower()
    if not name or name.startswith(".") or name.endswith(".") or ".." in name:
        raise ConfigError(variable, "must name a librdkafka property, e.g. KAFKA_CONFIG_SOCKET_TIMEOUT_MS")
    if name in OWNED:
        raise ConfigError(variable, f"may not set {name}, which the services set themselves")
    return name


def _read_secret_file(path: str) -> str:
    """The first line of a file holding a secret."""
    try:
        secret = Path(path).read_text(encoding="utf-8").splitlines()[0].strip()
    except (OSError, UnicodeDecodeError, IndexError) as error:
        raise ConfigError("KAFKA_SASL_PASSWORD_FILE", f"cannot be read: {type(error).__name__}") from None
    if not secret:
        raise ConfigError("KAFKA_SASL_PASSWORD_FILE", "names an empty file")
    return secret


def _check(properties: dict[str, str]) -> None:
    """Refuse a security protocol or mechanism librdkafka does not know, and SASL without credentials."""
    protocol = properties.get("security.protocol", "plaintext").lower()
    if protocol not in SECURITY_PROTOCOLS:
        raise ConfigError("KAFKA_SECURITY_PROTOCOL", f"must be one of {', '.join(SECURITY_PROTOCOLS)}, got {protocol!r}")
    mechanism = properties.get("sasl.mechanism")
    if mechanism is not None and mechanism not in SASL_MECHANISMS:
        raise ConfigError("KAFKA_SASL_MECHANISM", f"must be one of {', '.join(SASL_MECHANISMS)}, got {mechanism!r}")
    if protocol.startswith("sasl") and mechanism is None:
        raise ConfigError("KAFKA_SASL_MECHANISM", f"must be set with KAFKA_SECURITY_PROTOCOL={protocol}")
    if protocol.startswith("sasl") and mechanism in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"):
        for variable, name in (("KAFKA_SASL_USERNAME", "sasl.username"), ("KAFKA_SASL_PASSWORD", "sasl.password")):
            if not properties.get(name):
                raise ConfigError(variable, f"must be set with KAFKA_SECURITY_PROTOCOL={protocol}")
    location = properties.get("ssl.ca.location")
    if location is not None and location != "probe" and not Path(location).exists():
        raise ConfigError("KAFKA_SSL_CA_LOCATION", f"names no file: {location}")


# What a broker answers to credentials it refuses, or a certificate the client does not trust: the
# variable to blame, and what happened.
REFUSALS = {KafkaError._AUTHENTICATION: ("KAFKA_SASL_PASSWORD", "(or KAFKA_SASL_USERNAME) was refused"),
            KafkaError.SASL_AUTHENTICATION_FAILED: ("KAFKA_SASL_PASSWORD", "(or KAFKA_SASL_USERNAME) was refused"),
            KafkaError._SSL: ("KAFKA_SSL_CA_LOCATION", "did not let the TLS handshake succeed")}
UNREACHABLE = {KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError._RESOLVE}


def check_accepted(kafka: KafkaConnection, timeout: float = 10.0) -> None:
    """Raise ConfigError, naming the variable, when the brokers refuse these credentials or this TLS setup.

    A broker that cannot be reached is not a refusal: the services wait for it as they always do.
    """
    errors: list[KafkaError] = []
    admin = AdminClient(kafka.config(error_cb=errors.append, log_level=0))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            admin.list_topics(timeout=0.5)
            return
        except KafkaException as error:
            errors.append(error.args[0])
        admin.poll(0)
        refused = next((error for error in errors if error.code() in REFUSALS), None)
        if refused is not None:
            variable, what = REFUSALS[refused.code()]
            raise ConfigError(variable, f"{what} by Kafka at {kafka.bootstrap_servers}: {refused.str()}")
        if any(error.code() in UNREACHABLE for error in errors):
            return
