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
