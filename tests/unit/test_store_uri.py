"""`make run` with MONGODB_URI: the store's URI is printed with its secrets masked, and read as given."""

import pytest

from infra.local_stack import _describe_store
from infra.run_settings import hide_secrets, mask_password, read_run_settings


@pytest.mark.parametrize(("uri", "printed"), [
    ("mongodb://127.0.0.1:27017/", "mongodb://127.0.0.1:27017/"),
    ("mongodb://app:s3cret@db1:27017,db2:27017/?replicaSet=rs0&w=majority",
     "mongodb://app:****@db1:27017,db2:27017/?replicaSet=rs0&w=majority"),
    ("mongodb+srv://app:p%40ss%3Aw0rd@cluster0.example.net/?retryWrites=true&tls=true&readPreference=secondary",
     "mongodb+srv://app:****@cluster0.example.net/?retryWrites=true&tls=true&readPreference=secondary"),
    # Not escaped as it should be: still nothing of the password is shown.
    ("mongodb://app:p@ss/w?rd@db1/", "mongodb://app:****@db1/"),
    ("mongodb://x509user@db1/?authMechanism=MONGODB-X509", "mongodb://x509user@db1/?authMechanism=MONGODB-X509"),
    ("mongodb://db1/?tls=true&tlsCertificateKeyFile=/k.pem&tlsCertificateKeyFilePassword=keypass",
     "mongodb://db1/?tls=true&tlsCertificateKeyFile=/k.pem&tlsCertificateKeyFilePassword=****"),
    ("mongodb://AKIA:secretkey@db1/?authMechanism=MONGODB-AWS;authMechanismProperties=AWS_SESSION_TOKEN:tok",
     "mongodb://AKIA:****@db1/?authMechanism=MONGODB-AWS;authMechanismProperties=****"),
    ("app:s3cret@db1:27017", "app:****@db1:27017"),
])
def test_the_printed_uri_keeps_everything_but_its_secrets(uri, printed):
    assert mask_password(uri) == printed


def test_a_driver_error_loses_the_password_in_either_form():
    uri = "mongodb://app:p%40ss@db1/?tlsCertificateKeyFilePassword=keypass"
    error = "auth as app with p@ss (p%40ss) and keypass failed"
    assert hide_secrets(error, uri) == "auth as app with **** (****) and **** failed"


def test_the_store_uri_is_kept_exactly_as_given_and_empty_means_ferretdb():
    uri = "mongodb://app:s3cret@db1:27017/?tls=true&w=majority&retryWrites=false&readPreference=nearest"
    settings = read_run_settings({"MONGODB_URI": uri, "MONGODB_DATABASE": "chat_prod_copy"})
    assert (settings.mongodb_uri, settings.mongodb_database, settings.mongodb_ping_timeout) == (uri, "chat_prod_copy", 5.0)
    assert read_run_settings({"MONGODB_URI": ""}).mongodb_uri is None
    assert read_run_settings({"RUN_MONGODB_PING_TIMEOUT_S": "0.5"}).mongodb_ping_timeout == 0.5


def test_the_banner_says_which_store_is_used():
    named = read_run_settings({"MONGODB_URI": "mongodb://app:s3cret@db1/?tls=true", "MONGODB_DATABASE": "chat"})
    assert _describe_store(named) == "MongoDB at mongodb://app:****@db1/?tls=true (MONGODB_URI; not started here), database chat"
    local = read_run_settings({"RUN_MONGO_PORT": "27018", "RUN_DATA_DIR": "/srv/run"})
    assert _describe_store(local) == "FerretDB on 127.0.0.1:27018 (started here, data in /srv/run/ferretdb), database messaging"
