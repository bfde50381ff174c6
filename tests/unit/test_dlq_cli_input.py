"""The operator CLI answers any arguments with a result or a usage error, never a traceback."""

from contextlib import contextmanager

import bson
import mongomock
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumer_service.application.dlq_operations import Operations
from consumer_service.entrypoints import dlq_cli
from shared_adapters.mongo_failed_messages import MongoFailureRepository, selection_filter
from tests.unit.conftest import FakeRecordPublisher
from tests.unit.failure_fixtures import failed_document

# Arguments as a shell hands them over: bytes that are not UTF-8 arrive as lone surrogates.
EDGE_VALUES = st.sampled_from(["nan", "inf", "-inf", "1e400", "0", "-1", "9" * 24, "", " ", "client-messages:0:1:clientB",
                               "0001-01-01", "9999-12-31T23:59:59"])
ARGUMENT = st.one_of(
    st.text(max_size=12), EDGE_VALUES, st.integers(min_value=2**62).map(str),
    st.binary(min_size=1, max_size=12).map(lambda raw: "client" + raw.decode("utf-8", "surrogateescape")),
)
# A usable value per option, so that one hostile value is not hidden behind another's usage error.
USABLE = {"--to": "clientB", "--from": "clientA", "--error-type": "StoreUnavailable", "--reason-contains": "store",
          "--client": "*", "--status": "any", "--since": "2026-01-01", "--until": "2027-01-01", "--limit": "5"}
OPTIONS_OF = {"list": USABLE, "replay": {**USABLE, "--rate": "100", "--by": "ops"},
              "discard": {**USABLE, "--reason": "spam", "--by": "ops"}}


@st.composite
def invocations(draw) -> list[str]:
    """A command with a few of its options, each usable or hostile, and perhaps ids."""
    command = draw(st.sampled_from(sorted(OPTIONS_OF)))
    usable = OPTIONS_OF[command]
    names = draw(st.lists(st.sampled_from(sorted(usable)), unique=True, max_size=4))
    options = [part for name in names for part in (name, draw(st.one_of(st.just(usable[name]), EDGE_VALUES, ARGUMENT)))]
    if command == "discard" and "--reason" not in names:
        options += ["--reason", "spam"]
    return [command, *draw(st.lists(ARGUMENT, max_size=2)), *options]


class WireCheckedRepository(MongoFailureRepository):
    """The repository on mongomock, encoding each query as BSON first, as pymongo would to send it."""

    def select(self, selection, records=True):
        bson.encode({"find": "failed_messages", "filter": selection_filter(selection), "ids": list(selection.ids),
                     "limit": selection.limit or 0})
        return super().select(selection, records)


@pytest.fixture
def fake_operations(monkeypatch):
    """Wire the CLI's operations to mongomock and a fake publisher instead of the real store and broker."""
    database = mongomock.MongoClient(tz_aware=True)["messaging"]
    database.failed_messages.insert_many([failed_document(n) for n in range(3)])

    @contextmanager
    def operations(_settings, operator):
        yield Operations(WireCheckedRepository(database), FakeRecordPublisher(), operator=operator)

    monkeypatch.setattr(dlq_cli, "operations", operations)
    return database


@given(argv=invocations())
@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_arguments_end_in_a_result_or_a_usage_error(fake_operations, argv):
    result = CliRunner().invoke(dlq_cli.dlq, argv)
    assert result.exit_code in (0, 1, 2), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)


@given(failure_id=ARGUMENT)
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_show_answers_any_id_with_the_record_or_a_clear_error(fake_operations, failure_id):
    result = CliRunner().invoke(dlq_cli.dlq, ["show", failure_id])
    assert result.exit_code in (0, 1, 2) and (result.exception is None or isinstance(result.exception, SystemExit))


@pytest.mark.parametrize("arguments", [["--rate", "nan"], ["--rate", "inf"], ["--limit", "9" * 24],
                                       ["--to", "client\udcff"], ["client-messages:0:1:\udcffB"]])
def test_replay_refuses_unusable_arguments_with_a_usage_error(fake_operations, arguments):
    result = CliRunner().invoke(dlq_cli.dlq, ["replay", *arguments])
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_discard_requires_a_reason_that_is_not_blank(fake_operations):
    result = CliRunner().invoke(dlq_cli.dlq, ["discard", "client-messages:0:1:clientB", "--reason", " "])
    assert result.exit_code == 2 and "must not be empty" in result.output
    assert fake_operations.failed_messages.count_documents({"status": "discarded"}) == 0
