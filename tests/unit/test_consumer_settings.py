"""Consumer settings: defaults, derived group names and bad values."""

import pytest

from consumer_service.config import LogSettings, load_log_settings, load_settings
from shared_domain.config import ConfigError, exit_2_on_bad_setting


def test_each_deployment_gets_a_group_named_after_its_topic_and_client():
    assert load_settings("clientB", {}).group_id == "client-messages.for.clientB"
    assert load_settings("*", {}).group_id == "client-messages.for-all"
    assert load_settings("*", {}).projector_group_id == "client-messages-dlq.projector"


def test_other_topics_get_groups_of_their_own():
    settings = load_settings("clientB", {"MESSAGES_TOPIC": "staging-messages", "DEAD_LETTER_TOPIC": "staging-dlq"})
    assert (settings.group_id, settings.projector_group_id) == ("staging-messages.for.clientB", "staging-dlq.projector")


def test_an_explicit_group_id_wins():
    assert load_settings("clientB", {"CONSUMER_GROUP_ID": "blue"}).group_id == "blue"


@pytest.mark.parametrize("env, variable", [
    ({"CLIENT_ID": "two words"}, "CLIENT_ID"),
    ({"STORE_RETRY_ATTEMPTS": "0"}, "STORE_RETRY_ATTEMPTS"),
    ({"MONGODB_TIMEOUT_MS": "fast"}, "MONGODB_TIMEOUT_MS"),
    ({"PARTITION_CHECK_S": "0"}, "PARTITION_CHECK_S"),
])
def test_a_bad_value_names_its_variable(env, variable):
    with pytest.raises(ConfigError) as error:
        load_settings(None, env)
    assert error.value.name == variable


def test_the_log_level_option_comes_before_log_level_in_the_environment():
    assert load_log_settings(None, {}) == LogSettings("INFO", "json", "CRITICAL")
    assert load_log_settings(None, {"LOG_LEVEL": "debug", "LOG_FORMAT": "text"}).level == "DEBUG"
    assert load_log_settings("warning", {"LOG_LEVEL": "debug"}).level == "WARNING"


def test_a_bad_value_stops_with_its_one_line_and_exit_status_2(capsys):
    with pytest.raises(SystemExit) as stopped, exit_2_on_bad_setting():
        load_settings(None, {"STORE_RETRY_ATTEMPTS": "0"})
    assert stopped.value.code == 2
    assert capsys.readouterr().err == "configuration error: STORE_RETRY_ATTEMPTS must be at least 1, got 0\n"
