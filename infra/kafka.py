"""Install (from Maven Central) and run a single-node KRaft Apache Kafka broker."""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import shutil
import tempfile
import uuid
from pathlib import Path

from infra.cache import atomic_install, cache_dir, file_lock
from infra.kafka_security import PLAINTEXT, SASL_SSL, SECURITY_MODES, KafkaCredentials
from infra.process import LocalServer, free_ports, make_private, port_open, require_tool, run, write_private

log = logging.getLogger("infra")

KAFKA_VERSION = "4.1.2"
SCALA_VERSION = "2.13"
# The log4j version kafka-server 4.1.2 itself depends on; log4j-slf4j-impl must match it.
LOG4J_VERSION = "2.25.3"
DEPENDENCY_PLUGIN_VERSION = "3.11.0"
STARTED_MARKER = b"Kafka Server started"

JVM_OPTS = (
    "-Xms256m",
    "-Xmx512m",
    "-XX:+UseG1GC",
    # C1 only: the broker starts faster and a test broker never needs peak throughput.
    "-XX:TieredStopAtLevel=1",
    "-XX:-UsePerfData",
    "-Djava.awt.headless=true",
)

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.infra</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_{scala}</artifactId>
      <version>{kafka}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>{log4j}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-core</artifactId>
      <version>{log4j}</version>
    </dependency>
  </dependencies>
</project>
"""

_LOG4J2 = """status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = OUT
logger.clients.name = org.apache.kafka.clients
logger.clients.level = WARN
logger.config.name = org.apache.kafka.common.config.AbstractConfig
logger.config.level = WARN
"""


def java_executable() -> str:
    """Return the java launcher from $JAVA_HOME or PATH."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return str(Path(java_home) / "bin" / "java")
    found = shutil.which("java")
    if not found:
        raise RuntimeError("java not found: Kafka 4.x needs a Java 17+ runtime on PATH or in JAVA_HOME")
    return found


def install_kafka() -> Path:
    """Return the directory of Kafka runtime jars, fetching them with Maven on first use."""
    target = cache_dir() / "kafka" / f"kafka_{SCALA_VERSION}-{KAFKA_VERSION}"
    return atomic_install(target, _build_kafka, "kafka") / "libs"


def _build_kafka(dest: Path) -> None:
    """Resolve the broker's runtime jars into dest/libs with a throwaway pom."""
    mvn = require_tool("mvn", "Maven is needed once to fetch the Kafka jars")
    log.info("fetching Kafka %s jars from Maven Central", KAFKA_VERSION)
    with tempfile.TemporaryDirectory(prefix="infra-kafka-pom-") as work:
        pom = Path(work) / "pom.xml"
        pom.write_text(_POM.format(scala=SCALA_VERSION, kafka=KAFKA_VERSION, log4j=LOG4J_VERSION))
        run(
            [
                mvn,
                "-B",
                "-q",
                "-Dstyle.color=never",
                f"-Dmaven.repo.local={cache_dir() / 'maven-repo'}",
                "-f",
                str(pom),
                f"org.apache.maven.plugins:maven-dependency-plugin:{DEPENDENCY_PLUGIN_VERSION}:copy-dependencies",
                "-DincludeScope=runtime",
                f"-DoutputDirectory={dest / 'libs'}",
            ],
            what="mvn dependency:copy-dependencies for Kafka",
            cwd=Path(work),
        )
    if not (dest / "libs" / f"kafka_{SCALA_VERSION}-{KAFKA_VERSION}.jar").exists():
        raise RuntimeError(f"Kafka jar missing from {dest / 'libs'} after mvn")


def random_cluster_id() -> str:
    """Return a cluster id the way Kafka's Uuid.randomUuid() makes one (no JVM needed)."""
    while True:
        value = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        # Kafka rejects ids starting with '-' since they look like CLI flags.
        if not value.startswith("-"):
            return value


def class_archive() -> Path | None:
    """Return a CDS archive of the broker's classes for this JVM (made once), or None if unavailable."""
    libs = install_kafka()
    java = Path(java_executable()).resolve()
    stat = java.stat()
    key = hashlib.sha1(f"{java}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    archive = libs.parent / f"classes-{key}.jsa"
    failed = archive.with_suffix(".failed")
    if archive.exists() or failed.exists():
        return archive if archive.exists() else None
    with file_lock("kafka-cds"):
        if not archive.exists() and not failed.exists():
            try:
                _train_class_archive(archive)
            except Exception as exc:  # any failure: the archive only speeds start-up
                log.warning("could not build a class archive for Kafka (start-up will be slower): %s", exc)
                failed.write_text(str(exc))
    return archive if archive.exists() else None


def _train_class_archive(archive: Path) -> None:
    """Run a throwaway broker once with -XX:ArchiveClassesAtExit to record the classes it loads."""
    log.info("recording a class-data-sharing archive for faster Kafka start-up")
    partial = archive.with_name(f".{archive.name}.tmp-{os.getpid()}")
    partial.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="infra-kafka-cds-") as tmp:
        port, controller_port = free_ports(2)
        server = KafkaServer(port, controller_port, Path(tmp))
        server._jvm_extra = [f"-XX:ArchiveClassesAtExit={partial}", "-Xlog:cds*=error"]
        server.start()
        # The JVM writes the archive while exiting after SIGTERM.
        server.stop(timeout=60)
    if not partial.exists():
        raise RuntimeError("the JVM did not write the archive")
    os.rename(partial, archive)


class UnsecuredStorage(RuntimeError):
    """Kafka data formatted without the SCRAM user a SASL_SSL broker needs."""


class KafkaServer(LocalServer):
    """A single-node Kafka broker+controller (KRaft) on loopback.

    Its client listener is PLAINTEXT, or with security="sasl_ssl" SASL_SSL (SCRAM-SHA-512, a
    certificate from a CA of its own); the broker reaches itself over the client listener too, and
    only the controller listener stays PLAINTEXT, on loopback.
    """

    name = "Kafka"
    stop_timeout = 30.0

    def __init__(self, port: int, controller_port: int, data_dir: Path, security: str = PLAINTEXT,
                 credentials_dir: Path | None = None) -> None:
        """Configure the broker; nothing runs until start()."""
        super().__init__(data_dir)
        if security not in SECURITY_MODES:
            raise ValueError(f"security must be one of {', '.join(SECURITY_MODES)}, got {security!r}")
        self.port = port
        self.controller_port = controller_port
        self.security = security
        # Where the CA, the broker's certificate and the service user's password are kept (sasl_ssl only).
        self.credentials = (KafkaCredentials(credentials_dir or self.data_dir / "security") if security == SASL_SSL
                            else None)
        self.log_dir = self.data_dir / "kraft-logs"
        self.properties_path = self.data_dir / "server.properties"
        self.log4j_path = self.data_dir / "log4j2.properties"
        self._log_offset = 0
        # None: use the shared class archive if one can be had; a list: use these options instead.
        self._jvm_extra: list[str] | None = None

    @property
    def bootstrap_servers(self) -> str:
        """Return the client bootstrap address, e.g. '127.0.0.1:9092'."""
        return f"127.0.0.1:{self.port}"

    @property
    def listener(self) -> str:
        """The client listener's name, which is also its security protocol."""
        return "SASL_SSL" if self.credentials else "PLAINTEXT"

    def client_env(self) -> dict[str, str]:
        """The KAFKA_* security variables a service needs besides KAFKA_BOOTSTRAP_SERVERS (none for plaintext)."""
        return self.credentials.client_env() if self.credentials else {}

    def client_config(self) -> dict[str, str]:
        """A librdkafka configuration that reaches this broker: the address, and the credentials if any."""
        return {"bootstrap.servers": self.bootstrap_servers,
                **(self.credentials.client_properties() if self.credentials else {})}

    @property
    def formatted(self) -> bool:
        """Whether the broker's storage has been formatted."""
        return (self.log_dir / "meta.properties").exists()

    def start(self, timeout: float = 90.0) -> None:
        """Start the broker (formatting storage on first use) and wait until it serves metadata."""
        if self.alive:
            return
        self.launch()
        self.await_ready(timeout)

    def launch(self) -> None:
        """Start the broker's process (formatting storage on first use) without waiting for it to serve."""
        if self.alive:
            return
        if port_open(self.port) or port_open(self.controller_port):
            raise RuntimeError(f"port {self.port} or {self.controller_port} is already in use")
        libs = install_kafka()
        make_private(self.data_dir)
        formatted = self.formatted
        if self.credentials:
            self._prepare_credentials(formatted)
        write_private(self.properties_path, self._properties())
        write_private(self.log4j_path, _LOG4J2)
        classpath = f"{libs}/*"
        if self._jvm_extra is None:
            archive = class_archive()
            self._jvm_extra = [f"-XX:SharedArchiveFile={archive}"] if archive else []
        if not formatted:
            self._format(classpath)
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self._spawn(
            [
                java_executable(),
                *JVM_OPTS,
                *self._jvm_extra,
                f"-Dlog4j2.configurationFile={self.log4j_path}",
                f"-Dkafka.logs.dir={self.data_dir}",
                "-cp",
                classpath,
                "kafka.Kafka",
                str(self.properties_path),
            ],
            self.bootstrap_servers,
        )

    def _prepare_credentials(self, formatted: bool) -> None:
        """Make the certificates if due, and a password for the user that formatting the storage will create."""
        assert self.credentials is not None
        if formatted and not self.credentials.password_path.exists():
            # The SCRAM user can only be created at format time here: the controller does not take the
            # admin request, and no listener takes a client that is not that user yet.
            raise UnsecuredStorage(f"the Kafka data in {self.log_dir} was formatted without the SCRAM user SASL_SSL "
                                   f"needs (by a plaintext run, or its {self.credentials.password_path} was removed); "
                                   f"give the secured broker a data dir of its own, or remove {self.data_dir}")
        self.credentials.ensure_certificates()
        if not formatted:
            self.credentials.new_password()

    def _format(self, classpath: str) -> None:
        """Format the KRaft log dir (with the SCRAM user if secured)."""
        log.info("formatting Kafka storage in %s", self.log_dir)
        arguments = ["kafka.tools.StorageTool", "format", *self._format_arguments(), "-c", str(self.properties_path)]
        if self.credentials:
            arguments += ["--add-scram", self.credentials.scram_argument()]
        # The main class and its arguments go in an argument file: the password never shows in a process list.
        argument_file = self.data_dir / "format.args"
        write_private(argument_file, "".join(f"{_quoted(argument)}\n" for argument in arguments))
        try:
            run(
                [
                    java_executable(),
                    "-Xmx256m",
                    "-XX:TieredStopAtLevel=1",
                    *[opt for opt in self._jvm_extra or [] if opt.startswith("-XX:SharedArchiveFile=")],
                    f"-Dlog4j2.configurationFile={self.log4j_path}",
                    "-cp",
                    classpath,
                    f"@{argument_file}",
                ],
                what="kafka StorageTool format",
                private=True,
            )
        finally:
            argument_file.unlink(missing_ok=True)

    def _format_arguments(self) -> list[str]:
        """StorageTool format options: a new cluster whose controller quorum is this node alone."""
        return ["--standalone", "-t", random_cluster_id()]

    def _quorum_properties(self) -> dict[str, str]:
        """server.properties entries naming this node and its controller quorum, and the replication that allows."""
        return {"node.id": "1", "controller.quorum.bootstrap.servers": f"127.0.0.1:{self.controller_port}",
                **replication_properties(1)}

    def _properties(self) -> str:
        """Return server.properties for a combined broker+controller on loopback."""
        broker = f"{self.listener}://127.0.0.1:{self.port}"
        controller = f"CONTROLLER://127.0.0.1:{self.controller_port}"
        props = {
            "process.roles": "broker,controller",
            **self._quorum_properties(),
            "listeners": f"{broker},{controller}",
            "advertised.listeners": f"{broker},{controller}",
            "inter.broker.listener.name": self.listener,
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": f"CONTROLLER:PLAINTEXT,{self.listener}:{self.listener}",
            "log.dirs": str(self.log_dir),
            "auto.create.topics.enable": "false",
            "num.partitions": "3",
            # Fewer internal partitions: the first consumer group joins much faster.
            "offsets.topic.num.partitions": "5",
            "transaction.state.log.num.partitions": "5",
            "group.initial.rebalance.delay.ms": "0",
            # After a crash the restarted broker waits out the old registration's session
            # (default 9 s); on loopback a short session is safe and makes fault tests faster.
            "broker.heartbeat.interval.ms": "500",
            "broker.session.timeout.ms": "3000",
            **(self.credentials.broker_properties(self.listener) if self.credentials else {}),
        }
        return "".join(f"{key}={value}\n" for key, value in props.items())

    def _ready(self) -> bool:
        """Return True once the broker logged its start and (with confluent_kafka) lists itself."""
        if not self._logged_started() or not port_open(self.port):
            return False
        try:
            from confluent_kafka.admin import AdminClient
        except ImportError:
            return True
        admin = AdminClient({**self.client_config(), "log_level": 0})
        metadata = admin.list_topics(timeout=2)
        return bool(metadata.brokers)

    def _logged_started(self) -> bool:
        """Return True if this run's log has the line Kafka prints once the broker is unfenced."""
        with open(self.log_path, "rb") as handle:
            handle.seek(self._log_offset)
            return STARTED_MARKER in handle.read()


def replication_properties(nodes: int) -> dict[str, str]:
    """Replication defaults for a cluster of `nodes` brokers: 3 copies and 2 in sync, as far as it has brokers."""
    factor = min(3, nodes)
    min_insync = "2" if factor >= 3 else "1"
    return {"default.replication.factor": str(factor), "min.insync.replicas": min_insync,
            "offsets.topic.replication.factor": str(factor),
            "transaction.state.log.replication.factor": str(factor), "transaction.state.log.min.isr": min_insync,
            "share.coordinator.state.topic.replication.factor": str(factor),
            "share.coordinator.state.topic.min.isr": min_insync}


def _quoted(argument: str) -> str:
    """One argument as a java launcher argument file writes it: in double quotes, backslashes escaped."""
    return '"' + argument.replace("\\", "\\\\").replace('"', '\\"') + '"'
