"""Kafka connection settings: one reading of the environment for every client, secrets never shown."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared_adapters.kafka_connection import OWNED, KafkaConnection, read_kafka_connection
from shared_domain.config import ConfigError

SEGMENT = st.from_regex(r"[a-z0-9]+(_[a-z0-9]+)*", fullmatch=True)
PROPERTY = st.lists(SEGMENT, min_size=1, max_size=4).map(".".join).filter(lambda name: name not in OWNED)
SASL = {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "KAFKA_SASL_USERNAME": "svc", "KAFKA_SASL_PASSWORD": "p4ss-w0rd"}


def variable_of(name: str) -> str:
    """The KAFKA_CONFIG_ variable that passes a librdkafka property through."""
    return "KAFKA_CONFIG_" + name.replace("_", "__").replace(".", "_").upper()


@given(name=PROPERTY, value=st.text("abcXYZ019-:/", min_size=1, max_size=20))
def test_any_librdkafka_property_passes_through_its_escaped_variable(name, value):
    connection = read_kafka_connection({variable_of(name): value})
    assert connection.properties == {name: value}
    assert connection.config(**{"group.id": "g"})[name] == value


def test_the_named_security_settings_reach_every_client_config():
    config = read_kafka_connection({**SASL, "KAFKA_BOOTSTRAP_SERVERS": "b1:9093"}).config(acks="all")
    assert (config["bootstrap.servers"], config["security.protocol"], config["sasl.mechanism"]) == (
        "b1:9093", "SASL_SSL", "SCRAM-SHA-512")
    assert (config["sasl.username"], config["sasl.password"], config["acks"]) == ("svc", "p4ss-w0rd", "all")


def test_a_password_file_gives_the_password(tmp_path):
    secret = tmp_path / "password"
    secret.write_text("from-a-file\n")
    env = {**SASL, "KAFKA_SASL_PASSWORD": "", "KAFKA_SASL_PASSWORD_FILE": str(secret)}
    assert read_kafka_connection(env).properties["sasl.password"] == "from-a-file"


def test_secrets_never_show_in_a_repr():
    env = {**SASL, "KAFKA_CONFIG_SSL_KEY_PASSWORD": "k3y-s3cret", "KAFKA_CONFIG_SASL_OAUTHBEARER_CLIENT_SECRET": "c-s3cret"}
    shown = repr(read_kafka_connection(env))
    assert "p4ss-w0rd" not in shown and "k3y-s3cret" not in shown and "c-s3cret" not in shown and "svc" in shown


@pytest.mark.parametrize("env, variable", [
    ({"KAFKA_SECURITY_PROTOCOL": "tls"}, "KAFKA_SECURITY_PROTOCOL"),
    ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "KAFKA_SASL_MECHANISM"),
    ({**SASL, "KAFKA_SASL_PASSWORD": ""}, "KAFKA_SASL_PASSWORD"),
    ({**SASL, "KAFKA_SASL_MECHANISM": "MD5"}, "KAFKA_SASL_MECHANISM"),
    ({"KAFKA_SSL_CA_LOCATION": "/no/such/ca.pem"}, "KAFKA_SSL_CA_LOCATION"),
    ({"KAFKA_SASL_PASSWORD_FILE": "/no/such/file"}, "KAFKA_SASL_PASSWORD_FILE"),
    ({"KAFKA_CONFIG_ACKS": "0"}, "KAFKA_CONFIG_ACKS"),
    ({"KAFKA_CONFIG_ENABLE_IDEMPOTENCE": "false"}, "KAFKA_CONFIG_ENABLE_IDEMPOTENCE"),
    ({"KAFKA_CONFIG_": "x"}, "KAFKA_CONFIG_"),
])
def test_a_bad_setting_names_its_variable(env, variable):
    with pytest.raises(ConfigError) as refused:
        read_kafka_connection(env)
    assert refused.value.name == variable and "p4ss-w0rd" not in str(refused.value)


def test_plaintext_is_the_default():
    assert read_kafka_connection({}) == KafkaConnection("127.0.0.1:9092", {})
