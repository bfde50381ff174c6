"""Outages are reported once when they start and once when they end."""

import logging

from consumer_service.entrypoints.dependencies import DependencyState


def test_an_outage_is_logged_once_however_often_it_fails(caplog):
    state = DependencyState("mongodb")
    with caplog.at_level(logging.WARNING, logger="consumer_service"):
        for _ in range(5):
            state.down("connection refused")
        assert state.is_down
        state.up()
        state.up()
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 2
    assert lines[0] == "waiting for mongodb: connection refused" and lines[1].startswith("mongodb recovered after ")
    assert not state.is_down


def test_a_failure_reported_just_after_a_recovery_adds_no_lines_unless_it_lasts(caplog):
    now = [100.0]
    state = DependencyState("kafka", clock=lambda: now[0])
    with caplog.at_level("WARNING", logger="consumer_service"):
        state.down("1/1 brokers are down")
        now[0] += 8
        state.up()
        state.down("1/1 brokers are down")  # stale, right after the first success
        now[0] += 0.5
        state.up()
        assert [r.getMessage() for r in caplog.records] == ["waiting for kafka: 1/1 brokers are down",
                                                             "kafka recovered after 8.0s"]
        state.down("again")
        assert state.is_down and len(caplog.records) == 2
        now[0] += 2.5
        state.down("still")  # it lasts: now it is a wait of its own
        state.up()
    assert [r.getMessage() for r in caplog.records][2:] == ["waiting for kafka: still", "kafka recovered after 2.5s"]
