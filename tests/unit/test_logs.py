"""Log lines: one JSON object each (or a human line), with the fields given and the request's trace id."""

import json
import logging
from datetime import datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared_adapters.logs import JsonFormatter, TextFormatter, current_trace_id
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
