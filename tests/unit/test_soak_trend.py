"""The soak's rules: what counts as steady growth, as growing lag, and as a stall or a replaced process."""

import random
from collections import Counter

import pytest

from shared_domain.config import ConfigError
from tests.soak.probes import GroupPosition, ProcessSample
from tests.soak.report import Minute, minute_failures, trend_failures, trend_table
from tests.soak.settings import SoakSettings, read_soak_settings
from tests.soak.trend import MIN_JUDGED, growth, grows_steadily, lag_grows, late_percent_per_hour, slope


def series(values, start=5):
    """Values at consecutive minutes from `start` on."""
    return [(start + n, float(value)) for n, value in enumerate(values)]


def test_the_slope_of_a_straight_line_is_its_rise_per_minute():
    assert slope(series([10, 12, 14, 16])) == pytest.approx(2.0)
    assert slope(series([7])) == 0.0


def test_growth_compares_the_first_and_last_quarters_and_projects_the_slope_to_an_hour():
    moved = growth(series(range(100, 108)))
    assert (moved.first, moved.last, moved.samples) == (100.5, 106.5, 8)
    assert moved.per_hour == pytest.approx(60.0)
    assert moved.percent_per_hour == pytest.approx(60 / 100.5 * 100)


def test_a_slow_leak_grows_steadily():
    leak = series([100 + 0.5 * n for n in range(25)])  # 30 MiB an hour on 100
    assert grows_steadily(leak, limit_percent_per_hour=10, floor=2)


def test_noise_around_a_flat_line_does_not_grow():
    noise = random.Random(7)
    flat = series([100 + noise.uniform(-1.5, 1.5) for _ in range(25)])
    assert not grows_steadily(flat, limit_percent_per_hour=10, floor=2)


def test_a_process_that_grew_to_its_working_size_and_stays_there_does_not_grow_steadily():
    # Kafka's RSS in minutes 5 to 30 of a soak: its JVM touching heap up to -Xmx, then level.
    kafka = series([418, 429, 431, 436, 436, 441, 446, 447, 447, 447, 447, 451, 452, 452, 452, 453, 453, 453, 453,
                    453, 453, 453, 453, 453, 453, 453])
    assert growth(kafka).percent_per_hour > 10 and late_percent_per_hour(kafka) < 10
    assert not grows_steadily(kafka, limit_percent_per_hour=10, floor=2)


def test_a_small_count_that_rises_by_a_little_is_under_the_floor():
    descriptors = series([20] * 12 + [22] * 13)
    assert growth(descriptors).percent_per_hour > 10
    assert not grows_steadily(descriptors, limit_percent_per_hour=10, floor=3)


def test_too_few_samples_are_not_judged():
    steep = series([100 * 2 ** n for n in range(MIN_JUDGED - 1)])
    assert not grows_steadily(steep, limit_percent_per_hour=10, floor=2)


def test_lag_that_keeps_rising_past_the_limit_fails_and_a_spike_that_recedes_does_not():
    assert lag_grows(series([10, 200, 400, 800]), limit=500)
    assert not lag_grows(series([10, 900, 300, 20]), limit=500)
    assert not lag_grows(series([0, 100, 200, 300]), limit=500)


def sample(pid=10, rss=100.0):
    return {"producer": ProcessSample(pid, rss, 30, 8)}


def test_a_minute_that_accepted_sends_and_stored_nothing_is_a_stall():
    before = Minute(1, sample(), {"g": GroupPosition(100, 100)}, stored=3000, statuses=Counter({202: 3000}))
    stalled = Minute(2, sample(), {"g": GroupPosition(100, 3100)}, stored=0, statuses=Counter({202: 3000}))
    assert minute_failures(stalled, before) == [
        "minute 2: a stall: 3000 sends accepted, nothing stored",
        "minute 2: a stall: group g committed nothing while 3000 records waited"]


def test_a_minute_without_any_accepted_send_fails():
    before = Minute(1, sample(), {}, stored=3000, statuses=Counter({202: 3000}))
    refused = Minute(2, sample(), {}, stored=0, statuses=Counter({503: 3000}))
    assert minute_failures(refused, before) == ["minute 2: no send was accepted ({503: 3000})"]


def test_a_replaced_or_vanished_process_fails():
    before = Minute(1, sample(pid=10), {}, stored=1, statuses=Counter({202: 1}))
    assert minute_failures(Minute(2, sample(pid=11), {}, stored=1, statuses=Counter({202: 1})), before) == [
        "minute 2: producer (pid 10) was replaced"]
    assert minute_failures(Minute(2, {}, {}, stored=1, statuses=Counter({202: 1})), before) == [
        "minute 2: producer (pid 10) was gone"]


def test_a_steady_minute_after_a_steady_one_passes():
    before = Minute(1, sample(), {"g": GroupPosition(100, 101)}, stored=3000, statuses=Counter({202: 3000}))
    now = Minute(2, sample(), {"g": GroupPosition(3100, 3102)}, stored=3000, statuses=Counter({202: 3000}))
    assert minute_failures(now, before) == []


def test_the_run_fails_on_a_leaking_process_after_the_warm_up_and_prints_it_in_the_table():
    settings = SoakSettings(minutes=30)
    minutes = [Minute(n, sample(rss=80 + n), {"g": GroupPosition(n, n)}) for n in range(31)]
    [failure] = trend_failures(minutes, settings)
    assert failure == ("producer RSS MiB grows steadily: 87.5 -> 107.5 (+68.6% an hour, +68.6% in the second "
                       "half; limit 10%)")
    table = trend_table(minutes, settings)
    assert table[0].startswith("trend over minutes 5-30 (after 5 min of warm-up)")
    assert any(line.startswith("producer  RSS MiB") and line.endswith("GROWS") for line in table)
    assert any(line.startswith("producer  fds") and line.endswith("ok") for line in table)


def test_a_short_run_is_printed_but_its_growth_not_judged():
    settings = SoakSettings(minutes=3)
    minutes = [Minute(n, sample(rss=80 + 10 * n), {}) for n in range(4)]
    assert settings.warmup == 1 and trend_failures(minutes, settings) == []
    assert any(line.endswith("too short to judge") for line in trend_table(minutes, settings))


def test_the_warm_up_is_at_most_a_quarter_of_the_run():
    assert [SoakSettings(minutes=m).warmup for m in (1, 3, 8, 30, 120)] == [1, 1, 2, 5, 5]


def test_settings_come_from_soak_variables_and_a_bad_one_is_named():
    settings = read_soak_settings({"SOAK_MINUTES": "60", "SOAK_RATE": "20", "SOAK_STREAMS": "4"})
    assert (settings.minutes, settings.rate, settings.streams, settings.lag_limit) == (60, 20.0, 4, 200.0)
    with pytest.raises(ConfigError, match="SOAK_MINUTES"):
        read_soak_settings({"SOAK_MINUTES": "soon"})
