"""Log lines: one JSON object each (or a human line), with the fields given and the request's trace id."""

import io
import json
import logging
import os
from datetime import datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from infra.process import wait_until
from shared_adapters.logs import BatchedLines, JsonFormatter, TextFormatter, current_trace_id
from shared_domain.clock import to_iso
from shared_domain.config import ConfigError, read_log_format


def _record(message: str, **fields) -> logging.LogRecord:
    record = logging.LogRecord("consumer_service.x", logging.INFO, __file__, 1, message, (), None)
    record.__dict__.update(fields)
    return record


def test_a_json_line_has_the_time_level_logger_message_and_the_given_fields():
    line = JsonFormatter().format(_record("message stored", messageId="m-1", traceId="t-1", offset=7))
    entry = json.loads(line)
    assert entry.pop("time").endswith("Z") and entry.pop("pid") > 0
    assert entry == {"level": "INFO", "logger": "consumer_service.x", "message": "message stored",
                     "messageId": "m-1", "traceId": "t-1", "offset": 7}


@given(moments=st.lists(st.one_of(st.floats(0, 2**35), st.integers(0, 2**35).map(lambda second: second + 0.9999996)),
                        min_size=1, max_size=5))
def test_a_line_is_timed_as_the_api_writes_times_whatever_lines_came_before(moments):
    for moment in moments:
        record = _record("tick")
        record.created = moment
        expected = to_iso(datetime.fromtimestamp(moment, timezone.utc))
        assert json.loads(JsonFormatter().format(record))["time"] == expected


def test_a_line_written_during_a_request_carries_its_trace_id_unless_it_names_one():
    token = current_trace_id.set("request-trace")
    try:
        assert json.loads(JsonFormatter().format(_record("rate limit not counted")))["traceId"] == "request-trace"
        assert json.loads(JsonFormatter().format(_record("replayed", traceId="own")))["traceId"] == "own"
    finally:
        current_trace_id.reset(token)
    assert "traceId" not in json.loads(JsonFormatter().format(_record("after the request")))


def test_the_text_format_is_one_line_with_name_value_fields():
    line = TextFormatter().format(_record("message accepted", messageId="m-1"))
    assert "\n" not in line and line.endswith("INFO consumer_service.x message accepted messageId=m-1")


def test_an_exception_is_kept_inside_the_one_json_line():
    try:
        raise ValueError("boom")
    except ValueError:
        record = _record("unexpected")
        record.exc_info = __import__("sys").exc_info()
    line = JsonFormatter().format(record)
    assert "\n" not in line and "ValueError: boom" in json.loads(line)["exception"]


@pytest.mark.parametrize("value, expected", [(None, "json"), ("JSON", "json"), ("text", "text"), ("", "json")])
def test_log_format_reads_json_or_text(value, expected):
    assert read_log_format({} if value is None else {"LOG_FORMAT": value}) == expected


def test_any_other_log_format_names_the_variable():
    with pytest.raises(ConfigError, match="LOG_FORMAT"):
        read_log_format({"LOG_FORMAT": "xml"})


def _batched(stream: io.StringIO, **options) -> tuple[logging.Logger, BatchedLines]:
    """A logger writing to `stream` through a BatchedLines handler of its own."""
    handler = BatchedLines(stream, **options)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger(f"batched.{id(handler)}")
    logger.handlers[:], logger.propagate, logger.level = [handler], False, logging.INFO
    return logger, handler


def test_batched_lines_are_written_together_within_the_interval_in_order():
    stream = io.StringIO()
    logger, handler = _batched(stream, interval_s=0.05)
    for n in range(3):
        logger.info("line %d", n)
    assert stream.getvalue() == "", "kept for the next write"
    wait_until(lambda: stream.getvalue() == "line 0\nline 1\nline 2\n", timeout=5, what="the lines written")
    handler.close()


def test_a_warning_is_written_at_once_after_the_lines_kept_before_it():
    stream = io.StringIO()
    logger, handler = _batched(stream, interval_s=60)
    logger.info("accepted")
    logger.warning("store did not answer")
    assert stream.getvalue() == "accepted\nstore did not answer\n"
    handler.close()


def test_lines_are_written_once_as_many_as_a_batch_holds_are_kept_and_at_close():
    stream = io.StringIO()
    logger, handler = _batched(stream, interval_s=60, max_lines=3)
    for n in range(4):
        logger.info("%d", n)
    assert stream.getvalue() == "0\n1\n2\n"
    handler.close()
    assert stream.getvalue() == "0\n1\n2\n3\n"


def test_a_forked_child_writes_its_own_lines_and_not_its_parents(tmp_path):
    path = tmp_path / "lines.log"
    with open(path, "a") as stream:
        logger, handler = _batched(stream, interval_s=60)
        logger.info("parent, before the fork")
        child = os.fork()
        if child == 0:
            logger.info("child")
            handler.flush()
            os._exit(0)
        assert os.waitpid(child, 0)[1] == 0
        handler.close()
    assert sorted(path.read_text().splitlines()) == ["child", "parent, before the fork"]
