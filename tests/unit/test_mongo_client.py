"""The MongoDB URI reaches every client unchanged: TLS, credentials, write concern, retries, read preference."""

from pymongo import ReadPreference

from shared_adapters.mongo_client import connect

PRODUCTION = ("mongodb://svc:s3cret@db1.example:27017,db2.example:27017/?replicaSet=rs0&tls=true&authSource=admin"
              "&w=majority&journal=true&retryWrites=false&readPreference=secondaryPreferred")


def test_the_uri_options_reach_the_client_as_given():
    client = connect(PRODUCTION, 5000)
    try:
        assert client.write_concern.document == {"w": "majority", "j": True}
        assert client.options.retry_writes is False
        assert client.read_preference == ReadPreference.SECONDARY_PREFERRED
        assert client.options.replica_set_name == "rs0"
        assert client.options.pool_options._ssl_context is not None, "tls"
        assert client.options.pool_options._credentials.username == "svc"
        assert client.options.pool_options._credentials.source == "admin"
    finally:
        client.close()


def test_only_the_timeouts_are_the_services_own():
    client = connect("mongodb://db1.example:27017/?serverSelectionTimeoutMS=99999", 1500)
    try:
        assert client.options.server_selection_timeout == 1.5
    finally:
        client.close()
