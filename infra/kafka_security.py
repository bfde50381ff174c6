"""SASL_SSL for the local broker: a CA and a server certificate made with openssl, and one SCRAM user.

Everything lives in one directory next to the broker's data (0700, its files 0600): the CA's
certificate and key, the broker's key and certificate in one PEM file (KIP-651), and the service
user's password, made when the broker's storage is formatted with that user (KIP-900).
"""

from __future__ import annotations

import secrets
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from infra.process import private_dir, require_tool, run, write_private

PLAINTEXT = "plaintext"
SASL_SSL = "sasl_ssl"
SECURITY_MODES = (PLAINTEXT, SASL_SSL)
MECHANISM = "SCRAM-SHA-512"
USERNAME = "messaging"
CA_DAYS = 3650
SERVER_DAYS = 825
RENEW_WITHIN_S = 30 * 24 * 3600  # a certificate that expires sooner is made again at the next start
SERVER_EXTENSIONS = """subjectAltName=IP:127.0.0.1,DNS:localhost
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
"""


@dataclass(frozen=True)
class KafkaCredentials:
    """Where a secured broker keeps its CA, its certificate and its service user's password."""

    directory: Path
    username: str = USERNAME

    @property
    def ca_path(self) -> Path:
        """The CA certificate clients trust (KAFKA_SSL_CA_LOCATION)."""
        return self.directory / "ca.pem"

    @property
    def ca_key_path(self) -> Path:
        """The CA's private key, used only to sign the broker's certificate."""
        return self.directory / "ca.key"

    @property
    def keystore_path(self) -> Path:
        """The broker's private key and certificate, one PEM file."""
        return self.directory / "server.pem"

    @property
    def password_path(self) -> Path:
        """The file holding the service user's password (KAFKA_SASL_PASSWORD_FILE)."""
        return self.directory / "password"

    def password(self) -> str:
        """The service user's password."""
        return self.password_path.read_text(encoding="utf-8").strip()

    def new_password(self) -> None:
        """Choose a new password for the service user (before the storage is formatted with it)."""
        private_dir(self.directory)
        # URL-safe characters only: no quote, comma, bracket or '=' to escape in JAAS or --add-scram.
        write_private(self.password_path, secrets.token_urlsafe(32) + "\n")

    def ensure_certificates(self) -> None:
        """Make the CA and the broker's certificate unless they exist and are not about to expire."""
        private_dir(self.directory)
        renewed = False
        if not lasts(self.ca_path):
            make_ca(self.ca_path, self.ca_key_path, "client-messaging local Kafka CA")
            renewed = True
        if renewed or not lasts(self.keystore_path):
            issue_server_certificate(self.ca_path, self.ca_key_path, self.keystore_path)

    def client_env(self) -> dict[str, str]:
        """The variables a service reads to connect (shared_adapters/kafka_connection.py); no secret in them."""
        return {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": MECHANISM,
                "KAFKA_SASL_USERNAME": self.username, "KAFKA_SASL_PASSWORD_FILE": str(self.password_path),
                "KAFKA_SSL_CA_LOCATION": str(self.ca_path)}

    def client_properties(self) -> dict[str, str]:
        """The same settings as librdkafka properties, the password included."""
        return {"security.protocol": "SASL_SSL", "sasl.mechanism": MECHANISM, "sasl.username": self.username,
                "sasl.password": self.password(), "ssl.ca.location": str(self.ca_path)}

    def broker_properties(self, listener: str) -> dict[str, str]:
        """server.properties entries for a SASL_SSL listener that the broker also uses to reach itself."""
        jaas = (f'org.apache.kafka.common.security.scram.ScramLoginModule required username="{self.username}" '
                f'password="{self.password()}";')
        return {
            "sasl.enabled.mechanisms": MECHANISM,
            "sasl.mechanism.inter.broker.protocol": MECHANISM,
            f"listener.name.{listener.lower()}.{MECHANISM.lower()}.sasl.jaas.config": jaas,
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(self.keystore_path),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(self.ca_path),
        }

    def scram_argument(self) -> str:
        """The StorageTool `--add-scram` value that creates the service user."""
        return f"{MECHANISM}=[name={self.username},password={self.password()}]"


def lasts(certificate: Path) -> bool:
    """Whether a PEM file holds a certificate that is valid for a while yet."""
    if not certificate.exists():
        return False
    openssl = require_tool("openssl", "it makes the certificates of the SASL_SSL listener")
    checked = subprocess.run([openssl, "x509", "-checkend", str(RENEW_WITHIN_S), "-noout", "-in", str(certificate)],
                             stdin=subprocess.DEVNULL, capture_output=True)
    return checked.returncode == 0


def make_ca(certificate: Path, key: Path, name: str) -> None:
    """Make a self-signed CA: its certificate and its private key (0600)."""
    openssl = require_tool("openssl", "it makes the certificates of the SASL_SSL listener")
    run([openssl, "req", "-x509", "-new", *_new_key(), "-keyout", str(key), "-out", str(certificate),
         "-days", str(CA_DAYS), "-subj", f"/CN={name}", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"], "openssl: making a CA", private=True)


def issue_server_certificate(ca: Path, ca_key: Path, keystore: Path) -> None:
    """Write a new key and a certificate for 127.0.0.1 and localhost, signed by the CA, into one PEM file (0600)."""
    openssl = require_tool("openssl", "it makes the certificates of the SASL_SSL listener")
    with tempfile.TemporaryDirectory(prefix=".issue-", dir=keystore.parent) as work:
        key, request, signed, extensions = (Path(work) / name for name in ("key", "csr", "crt", "ext"))
        write_private(extensions, SERVER_EXTENSIONS)
        run([openssl, "req", "-new", *_new_key(), "-keyout", str(key), "-out", str(request), "-subj", "/CN=localhost"],
            "openssl: making the broker's key", private=True)
        run([openssl, "x509", "-req", "-in", str(request), "-CA", str(ca), "-CAkey", str(ca_key),
             "-set_serial", f"0x{secrets.token_hex(16)}", "-days", str(SERVER_DAYS), "-extfile", str(extensions),
             "-out", str(signed)], "openssl: signing the broker's certificate", private=True)
        write_private(keystore, key.read_text() + signed.read_text())


def _new_key() -> list[str]:
    """openssl options for a new unencrypted P-256 key, which both Java and librdkafka read."""
    return ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]

