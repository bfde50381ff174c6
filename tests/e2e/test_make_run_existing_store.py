"""`MONGODB_URI=… make run`: the stack uses that store as given, starts no FerretDB, and leaves the store running."""

import os
import uuid
from pathlib import Path

import pytest
from pymongo import MongoClient

from infra.process import wait_until
from tests.support.local_stack import LocalStackRun, environ, running

PASSWORD = "n0t-to-be-printed"
OPTIONS = "w=majority&retryWrites=false&readPreference=primary&appName=make-run-existing-store"


def store_uri(address: str) -> str:
    """The suite's store with options a hosted MongoDB would need, and credentials when it is the suite's FerretDB."""
    uri = f"{address}{'&' if '?' in address else '?'}{OPTIONS}"
    if os.environ.get("TEST_MONGODB_URI"):
        return uri
    # FerretDB v1 on SQLite takes any PLAIN credentials: enough to see the password travel and stay unprinted.
    return uri.replace("mongodb://", f"mongodb://app:{PASSWORD}@", 1) + "&authMechanism=PLAIN&authSource=%24external"


@pytest.fixture(scope="module")
def stack(kafka, mongo, tmp_path_factory):
    """A running `make run` with one consumer on the suite's Kafka (topics of its own) and store (a database of its own)."""
    topic = f"make-run-store-{uuid.uuid4().hex[:10]}"
    run = LocalStackRun(tmp_path_factory.mktemp("make-run-store"), RUN_CLIENTS="clientB",
                        MONGODB_URI=store_uri(mongo.address), MONGODB_DATABASE=f"make_run_{uuid.uuid4().hex[:10]}",
                        KAFKA_BOOTSTRAP_SERVERS=kafka.address, MESSAGES_TOPIC=topic, DEAD_LETTER_TOPIC=f"{topic}-dlq",
                        STORED_EVENTS_TOPIC=f"{topic}-stored")
    yield from running(run)


def test_no_ferretdb_is_started_and_every_service_gets_the_uri_unchanged(stack):
    pids = stack.pids()
    assert set(pids) == {"consumer-clientB", "producer", "operator"}
    assert not [pid for pid in stack.marked_processes() if b"ferretdb" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    for pid in pids.values():
        assert {name: environ(pid)[name] for name in ("MONGODB_URI", "MONGODB_DATABASE")} == {
            "MONGODB_URI": stack.env["MONGODB_URI"], "MONGODB_DATABASE": stack.env["MONGODB_DATABASE"]}
    assert not (stack.workdir / "data" / "ferretdb").exists()


def test_the_banner_names_the_store_with_its_password_masked(stack):
    masked = stack.env["MONGODB_URI"].replace(PASSWORD, "****")
    lines = stack.lines()
    assert f"using the store at MONGODB_URI: {masked} (it answered a ping)" in lines
    assert f"store:   MongoDB at {masked} (MONGODB_URI; not started here), database {stack.env['MONGODB_DATABASE']}" in lines
    assert PASSWORD not in stack.output() and not [line for line in lines if "FerretDB" in line and "starting" in line]


def test_a_message_sent_through_the_producer_is_stored_in_that_database(stack):
    message_id = f"existing-store-{uuid.uuid4().hex[:8]}"
    reply = stack.api.send("clientB", "clientB", "stored where MONGODB_URI says", messageId=message_id)
    assert reply.status == 202, reply.body
    with MongoClient(stack.env["MONGODB_URI"], serverSelectionTimeoutMS=5000) as client:
        database = client[stack.env["MONGODB_DATABASE"]]
        wait_until(lambda: database.messages.find_one({"messageId": message_id}) is not None, 60,
                   what="the message in the database MONGODB_DATABASE names")
        stored = database.messages.find_one({"messageId": message_id})
        registered = ([c["_id"] for c in database.clients.find()], [o["_id"] for o in database.operators.find()])
    assert (stored["from"], stored["to"], stored["message"]) == ("clientB", "clientB", "stored where MONGODB_URI says")
    assert registered == (["clientB"], ["operator"]), "the bootstrap step registers in that database too"


def test_stopping_make_run_leaves_the_store_it_did_not_start_running(stack, mongo):
    assert stack.stop() == 0
    assert stack.lines()[-1] == "all processes stopped"
    with MongoClient(mongo.address, serverSelectionTimeoutMS=5000) as client:
        assert client.admin.command("ping")["ok"] == 1
