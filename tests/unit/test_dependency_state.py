"""Outages are reported once when they start and once when they are over."""

import logging

from consumer_service.entrypoints.dependencies import Dependencies, DependencyState


def clocked(name: str) -> tuple[DependencyState, list[float]]:
    """A state on a clock the test moves."""
    now = [100.0]
    return DependencyState(name, clock=lambda: now[0]), now


def test_an_outage_is_logged_once_however_often_it_fails_and_its_end_once_the_recovery_held(caplog):
    state, now = clocked("mongodb")
    with caplog.at_level(logging.WARNING, logger="consumer_service"):
        for _ in range(5):
            state.down("connection refused")
        assert state.is_down
        now[0] += 3
        state.up()
        state.up()
        assert not state.is_down
        state.settle()
        assert len(caplog.records) == 1, "over only once the recovery has held"
        now[0] += DependencyState.RECOVERY_S
        state.settle()
        state.settle()
    lines = [record.getMessage() for record in caplog.records]
    assert lines == ["waiting for mongodb: connection refused", "mongodb recovered after 3.0s"]


def test_a_failure_before_the_recovery_held_is_the_same_wait_going_on(caplog):
    state, now = clocked("kafka")
    with caplog.at_level("WARNING", logger="consumer_service"):
        state.down("1/1 brokers are down")
        now[0] += 8
        state.up()
        now[0] += 3
        state.down("1/1 brokers are down")  # a restarting broker answers some requests before others
        assert state.is_down
        now[0] += 2
        state.up()
        now[0] += DependencyState.RECOVERY_S
        state.settle()
        now[0] += 10
        state.down("again")  # a new wait, long after the last one was over
    assert [r.getMessage() for r in caplog.records] == ["waiting for kafka: 1/1 brokers are down",
                                                        "kafka recovered after 13.0s", "waiting for kafka: again"]


def test_a_suspected_failure_is_quiet_until_confirmed_and_a_stale_one_leaves_no_line(caplog):
    state, now = clocked("kafka")
    with caplog.at_level("WARNING", logger="consumer_service"):
        state.suspect("0/1 brokers are down")  # librdkafka, long after a recovery: nothing else fails
        assert state.is_down
        now[0] += 2
        state.up()  # a probe answered
        now[0] += DependencyState.RECOVERY_S
        state.settle()
        assert caplog.records == [] and not state.is_down
        state.suspect("1/1 brokers are down")
        now[0] += 2
        state.down("no answer to a probe")
        now[0] += 5
        state.up()
        now[0] += DependencyState.RECOVERY_S
        state.settle()
    assert [r.getMessage() for r in caplog.records] == ["waiting for kafka: 1/1 brokers are down",
                                                        "kafka recovered after 7.0s"]


def test_a_caller_whose_one_wait_is_over_tells_the_recovery_at_once(caplog):
    state, now = clocked("kafka")
    with caplog.at_level("WARNING", logger="consumer_service"):
        state.down("1/1 brokers are down")
        now[0] += 4
        state.up(held=True)
    assert [r.getMessage() for r in caplog.records] == ["waiting for kafka: 1/1 brokers are down",
                                                        "kafka recovered after 4.0s"]


def test_a_probe_that_fails_confirms_a_suspected_failure_and_one_that_answers_ends_it(caplog):
    answers = [False, False, True]
    dependencies = Dependencies.fresh(kafka_probe=lambda: answers.pop(0))
    state = dependencies.kafka
    state.RECOVERY_S = 0.0
    with caplog.at_level("WARNING", logger="consumer_service"):
        state.suspect("1/1 brokers are down")
        for _ in range(4):
            dependencies._last_probe = 0.0  # the next probe is due
            dependencies.probe_down()
    assert [r.getMessage().split(" after ")[0] for r in caplog.records] == ["waiting for kafka: 1/1 brokers are down",
                                                                             "kafka recovered"]
    assert not state.is_down and answers == []
