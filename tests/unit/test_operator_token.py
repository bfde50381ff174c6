"""OPERATOR_TOKEN: long enough not to be guessed, and an operator of its own name that no registration can take."""

import mongomock
import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumer_service.config import load_operator_settings
from producer_service.config import load_settings
from shared_adapters.local_windows import OVERFLOW_KEY, LocalWindows
from shared_adapters.mongo_identities import MongoIdentityRegistry
from shared_domain.config import ConfigError
from shared_domain.identity import MIN_OPERATOR_TOKEN_CHARS, OPERATOR, OPERATOR_TOKEN_NAME, AlreadyRegistered

LOADERS = [lambda env: load_settings(env), lambda env: load_operator_settings(env)]


@pytest.mark.parametrize("load", LOADERS, ids=["producer", "operator server"])
@given(token=st.text("abcdefghijklmnopqrstuvwxyz", min_size=8, max_size=MIN_OPERATOR_TOKEN_CHARS - 1))
def test_a_short_operator_token_stops_the_service_naming_the_variable_not_the_value(load, token):
    with pytest.raises(ConfigError) as refused:
        load({"OPERATOR_TOKEN": token})
    assert refused.value.name == "OPERATOR_TOKEN" and token not in str(refused.value)


@pytest.mark.parametrize("load", LOADERS, ids=["producer", "operator server"])
def test_an_operator_token_of_32_characters_is_taken(load):
    assert load({"OPERATOR_TOKEN": "x" * MIN_OPERATOR_TOKEN_CHARS}) is not None


def test_no_operator_can_be_registered_under_the_name_operator_token_acts_as():
    registry = MongoIdentityRegistry(mongomock.MongoClient(tz_aware=True)["messaging"])
    with pytest.raises(AlreadyRegistered):
        registry.add(OPERATOR, OPERATOR_TOKEN_NAME)


@given(hits=st.lists(st.sampled_from(["a", "b", "c"]), max_size=40), limit=st.integers(1, 5))
def test_local_windows_count_each_key_up_to_its_limit_and_start_again_in_the_next_window(hits, limit):
    now = [0.0]
    windows = LocalWindows(window_s=60, clock=lambda: now[0])
    passed = [key for key in hits if windows.hit(key, limit) is None]
    for key in "abc":
        assert passed.count(key) == min(hits.count(key), limit)
        assert (windows.over(key, limit) is not None) == (hits.count(key) >= limit)
    now[0] = 60.0
    assert all(windows.over(key, limit) is None for key in "abc")


def test_local_windows_beyond_their_key_budget_share_one_count():
    windows = LocalWindows(max_keys=2)
    assert windows.hit("a", 1) is None and windows.hit("b", 1) is None
    assert windows.hit("c", 1) is None and windows.hit("d", 1) is not None, f"c and d share {OVERFLOW_KEY!r}"
