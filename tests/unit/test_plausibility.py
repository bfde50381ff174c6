"""Forged positions: a stored event or dead letter naming a record the message topic cannot hold is caught."""

import datetime
import itertools
import logging

import mongomock
import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumer_service.application.dlq_operations import Operations, replay
from consumer_service.application.errors import KafkaUnavailable
from consumer_service.application.project_failures import project_dead_letters
from consumer_service.application.project_views import project_views
from consumer_service.application.records import IncomingRecord
from consumer_service.infrastructure.mongo_failure_projection import MongoFailedMessageStore
from shared_adapters.mongo_failed_messages import MongoFailureRepository
from producer_service.infrastructure.kafka_stored_events import DropReport, plausible
from shared_domain.failed_messages import Selection, failure_summary_view
from shared_domain.failures import SourcePosition
from shared_domain.partitioning import partition_of
from shared_domain.plausibility import EndsUnknown, Holdback, SourceCheck, misplaced
from shared_domain.stored_events import encode_stored_event, stored_event
from tests.support.hostile import forged_dead_letters

from .failure_fixtures import T0, failed_document

TOPIC = "client-messages"


class Ends:
    """A message topic whose partitions end where told; counts the look-ups (None: a look-up fails)."""

    def __init__(self, ends: dict[int, int] | None):
        self.ends, self.asked = ends, []

    def __call__(self, partitions) -> dict[int, int | None]:
        self.asked.append(set(partitions))
        if self.ends is None:
            return {}
        return {partition: self.ends.get(partition) for partition in partitions}


def holdback(look_up, patience_s: float = 0.0, clock=lambda: 0.0) -> Holdback:
    """The live feed's check of stored events against a message topic whose ends `look_up` gives."""
    return Holdback(SourceCheck(TOPIC, look_up), lambda event: event.source, patience_s, clock)


def at(partition: int, offset: int, topic: str = TOPIC) -> SourcePosition:
    """A claimed position."""
    return SourcePosition(topic, partition, offset)


SENT_AT = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)


def event(partition: int, offset: int, topic: str = TOPIC, message_id: str = "m-1"):
    """A stored event from clientA to clientB claiming a position (the same event each call, so they compare)."""
    return stored_event(message_id, "clientA", "clientB", "hi", SENT_AT, at(partition, offset, topic))


@given(end=st.integers(0, 2**40), offset=st.integers(0, 2**63 - 1), partition=st.integers(0, 5))
def test_an_offset_at_or_beyond_its_partitions_end_is_judged_implausible_and_one_below_is_kept(end, offset, partition):
    [problem] = SourceCheck(TOPIC, Ends({p: end for p in range(6)})).judge([at(partition, offset)])
    assert (problem is None) == (offset < end)
    if problem is not None:
        assert f"end ({end}) of partition {partition}" in problem


@given(end=st.integers(1, 2**40), offsets=st.lists(st.integers(0, 2**62), min_size=1, max_size=50))
def test_the_feed_hands_on_exactly_the_events_below_their_partitions_end(end, offsets):
    events = [event(0, offset, message_id=f"m-{n}") for n, offset in enumerate(offsets)]
    kept = plausible(events, holdback(Ends({0: end})), DropReport())
    assert kept == [e for e in events if e.source.offset < end]


def test_a_position_in_another_topic_or_a_missing_partition_or_before_zero_is_implausible():
    ends = Ends({0: 10, 1: 10})
    problems = SourceCheck(TOPIC, ends).judge([at(0, 1, "elsewhere"), at(7, 1), at(-1, 1), at(0, -1), at(1, 9)])
    assert [p and p.split(" ")[0] for p in problems] == ["topic", "partition", "partition", "offset", None]
    assert "does not exist" in problems[1] and "negative" in problems[3]
    assert ends.asked == [{1, 7}], "another topic, a negative partition or offset needs no look-up"


def test_an_end_is_looked_up_once_per_batch_and_only_when_a_position_reaches_the_last_known_one():
    ends = Ends({0: 100, 1: 100})
    check = SourceCheck(TOPIC, ends)
    assert check.judge([at(0, 5), at(0, 6), at(1, 5)]) == [None, None, None]
    assert check.judge([at(0, 50), at(1, 99), at(0, 70)]) == [None, None, None]
    assert ends.asked == [{0, 1}], "below the known ends: nothing to look up"
    ends.ends[0] = 200
    assert check.judge([at(0, 150), at(0, 2**62), at(1, 5)])[0] is None
    assert ends.asked == [{0, 1}, {0}]


def test_a_partition_that_does_not_exist_is_not_remembered_so_a_flood_of_them_takes_no_memory():
    check = SourceCheck(TOPIC, Ends({0: 10}))
    check.judge([at(0, 1)])
    for partition in range(1, 1000):
        assert check.judge([at(partition, 0)]) == [f"partition {partition} of the message topic does not exist"]
    assert check._ends == {0: 10}


def test_when_an_end_cannot_be_looked_up_the_last_known_one_judges_and_none_known_is_not_judged():
    ends = Ends({0: 10})
    check = SourceCheck(TOPIC, ends)
    check.judge([at(0, 9)])
    ends.ends = None
    assert check.judge([at(0, 3), at(0, 10)]) == [None, "offset 10 is at or beyond the end (10) of partition 0"]
    with pytest.raises(EndsUnknown, match=r"partition\(s\) \[1\]"):
        check.judge([at(0, 3), at(1, 0)])


def test_a_check_asks_again_for_an_end_not_given_until_its_patience_runs_out_then_judges_with_the_answer():
    now = [0.0]
    ends = Ends(None)

    def sleep(seconds: float) -> None:
        now[0] += seconds
        if now[0] >= 5.0:
            ends.ends = {0: 100}  # the broker is back

    check = SourceCheck(TOPIC, ends, patience_s=30.0, clock=lambda: now[0], sleep=sleep)
    assert check.judge([at(0, 7), at(0, 2**40)]) == [None, f"offset {2**40} is at or beyond the end (100) of partition 0"]
    assert 5.0 <= now[0] < 6.0, "it asked again until the answer came, and no longer"


def test_projectors_neither_drop_nor_mark_what_they_cannot_check_yet_they_read_it_again():
    views_applied, failures_saved = [], []

    class Views:
        def apply(self, events):
            views_applied.extend(events)

    check, stored = SourceCheck(TOPIC, Ends(None)), event(0, 3)
    record = IncomingRecord("client-messages-stored", 0, 0, b"clientB", encode_stored_event(stored.message, stored.source), [])
    with pytest.raises(KafkaUnavailable):
        project_views([record], Views(), check.judge, partitions=None)
    database = mongomock.MongoClient(tz_aware=True)["messaging"]
    with pytest.raises(KafkaUnavailable):
        project_dead_letters([dead_letter(b"client-messages", b"0", b"3", 0)], MongoFailedMessageStore(database),
                             check.judge)
    assert views_applied == [] and database.failed_messages.count_documents({}) == 0


def test_a_flood_of_forged_events_is_reported_in_one_warning_line_with_its_count(caplog):
    now = [0.0]
    report, check = DropReport(interval_s=60, clock=lambda: now[0]), holdback(Ends({0: 10}))
    with caplog.at_level(logging.WARNING, "producer_service.infrastructure.kafka_stored_events"):
        for batch in range(300):
            now[0] = batch * 0.1
            kept = plausible([event(0, 2**62, message_id=f"forged-{batch}"), event(0, 3)], check, report)
            assert [e.source.offset for e in kept] == [3]
        now[0] = 61.0
        plausible([event(0, 2**62, message_id="forged-last")], check, report)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert "dropped 1 " in lines[0] and "forged-0" in lines[0] and "4611686018427387904" in lines[0]
    assert "dropped 300 " in lines[1] and "forged-last" in lines[1]


def test_a_check_that_fails_drops_the_batch_without_stopping_the_feed():
    def broken(_partitions):
        raise RuntimeError("no answer")

    assert plausible([event(0, 1)], holdback(broken), DropReport()) == []


def dead_letter(original_topic: bytes, partition: bytes, offset: bytes, dlq_offset: int) -> IncomingRecord:
    """A record of the dead-letter topic claiming to come from a position."""
    headers = [("dlq.original-topic", original_topic), ("dlq.original-partition", partition),
               ("dlq.original-offset", offset), ("dlq.consumer-client", b"clientB"),
               ("dlq.error-type", b"SchemaViolation")]
    return IncomingRecord("client-messages-dlq", 0, dlq_offset, b"clientB", b"{}", headers)


def test_the_projector_marks_dead_letters_whose_source_is_implausible_and_the_listing_shows_why():
    database = mongomock.MongoClient(tz_aware=True)["messaging"]
    judge = SourceCheck(TOPIC, Ends({0: 10})).judge
    letters = [dead_letter(b"client-messages", b"0", b"4", 0),
               dead_letter(b"client-messages", b"0", b"999999999999999999", 1),
               dead_letter(b"forged-1", b"0", b"4", 2), dead_letter(b"client-messages", b"9", b"4", 3)]
    assert project_dead_letters(letters, MongoFailedMessageStore(database), judge=judge) == 4
    suspects = {(d["source"]["topic"], d["source"]["partition"], d["source"]["offset"]): d.get("suspect")
                for d in database.failed_messages.find()}
    assert suspects[("client-messages", 0, 4)] is None
    assert "at or beyond the end (10)" in suspects[("client-messages", 0, 999999999999999999)]
    assert "not the message topic" in suspects[("forged-1", 0, 4)]
    assert "does not exist" in suspects[("client-messages", 9, 4)]
    view = failure_summary_view(database.failed_messages.find_one({"source.topic": "forged-1"}))
    assert "not the message topic" in view["suspect"]


def test_the_hostile_mixs_forged_dead_letters_are_each_still_projected_once_and_marked_suspect():
    database = mongomock.MongoClient(tz_aware=True)["messaging"]
    letters = [IncomingRecord("client-messages-dlq", 0, n, key, value, headers)
               for n, (key, value, headers) in enumerate(forged_dead_letters(20, 20261123))]
    project_dead_letters(letters, MongoFailedMessageStore(database), judge=SourceCheck(TOPIC, Ends({0: 10})).judge)
    documents = list(database.failed_messages.find())
    assert len(documents) == 20 and all(document.get("suspect") for document in documents)


def test_a_suspect_dead_letter_is_refused_by_replay_unless_forced(replayed):
    database = mongomock.MongoClient(tz_aware=True)["messaging"]
    suspect = {**failed_document(2), "suspect": "topic 'x' is not the message topic"}
    database.failed_messages.insert_many([failed_document(1), suspect])
    ops = Operations(MongoFailureRepository(database), replayed, operator="alice", clock=lambda: T0)
    report = replay(Selection(), ops)
    assert report.done == ["client-messages:0:1:clientB"]
    assert "may be forged" in report.refused["client-messages:0:2:clientB"] and len(replayed.records) == 1
    forced = replay(Selection(ids=("client-messages:0:2:clientB",)), ops, force=True)
    assert forced.done == ["client-messages:0:2:clientB"] and len(replayed.records) == 2


@given(partition=st.integers(0, 5))
def test_the_feed_drops_an_event_whose_source_is_not_in_its_recipients_partition(partition):
    forged = event(partition, 0)
    kept = plausible([forged], holdback(Ends({p: 10 for p in range(6)})), DropReport(), partitions=6)
    assert (kept == [forged]) == (partition == partition_of(b"clientB", 6))
    assert misplaced("clientB", forged.source, None) is None, "no partition count known: judged by its end alone"


class CatchingUp(Ends):
    """Partitions whose end is reported behind at first (a leader just elected), and right after a few look-ups."""

    def __init__(self, behind: int, right: int, after: int, partitions: int = 1):
        super().__init__(dict.fromkeys(range(partitions), behind))
        self.right, self.after = dict.fromkeys(range(partitions), right), after

    def __call__(self, partitions):
        if len(self.asked) >= self.after:
            self.ends = self.right
        return super().__call__(partitions)


def test_a_position_just_past_an_end_that_is_catching_up_is_looked_up_again_and_kept():
    clock = [0.0]
    check = SourceCheck(TOPIC, CatchingUp(behind=532, right=541, after=3), patience_s=5.0, clock=lambda: clock[0],
                        sleep=lambda seconds: clock.__setitem__(0, clock[0] + seconds))
    assert check.judge([at(0, 532), at(0, 540)]) == [None, None]
    assert clock[0] < 1.0, "looked up again a few times a second, not after the whole patience"


def test_a_position_past_an_end_that_stays_is_dropped_after_the_patience_and_one_far_past_at_once():
    clock = [0.0]
    sleep = lambda seconds: clock.__setitem__(0, clock[0] + seconds)
    check = SourceCheck(TOPIC, Ends({0: 532}), patience_s=5.0, clock=lambda: clock[0], sleep=sleep)
    [problem] = check.judge([at(0, 532)])
    assert problem is not None and 5.0 <= clock[0] < 5.5
    clock[0] = 0.0
    [problem] = check.judge([at(0, 2**62)])
    assert problem is not None and clock[0] == 0.0, "a position far past the end is judged without waiting"


@given(batches=st.lists(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 40)), max_size=8), min_size=1, max_size=6),
       behind=st.integers(0, 10), caught_up_after=st.integers(1, 12))
def test_the_feed_holds_events_just_past_a_lagging_end_back_in_order_and_hands_them_on_once_it_catches_up(
        batches, behind, caught_up_after):
    """Ends reported `behind` the truth (30 for every partition) until `caught_up_after` look-ups, and a second
    passing at each admit: every event below the true end is handed on, each partition's in arrival order, and every
    other one dropped once the patience (60 s) has passed."""
    ends = CatchingUp(behind=30 - behind, right=30, after=caught_up_after, partitions=3)
    clock = itertools.count()
    check, report = holdback(ends, patience_s=60.0, clock=lambda: next(clock)), DropReport()
    arrived = [event(p, offset, message_id=f"m-{n}-{i}") for n, batch in enumerate(batches)
               for i, (p, offset) in enumerate(batch)]
    handed = [kept for n, batch in enumerate(batches)
              for kept in plausible([e for e in arrived if e.message.message_id.startswith(f"m-{n}-")], check, report)]
    while check.holding:
        handed += plausible([], check, report)
    lane = lambda events, p: [e.message.message_id for e in events if e.source.partition == p]
    for p in range(3):
        assert lane(handed, p) == lane([e for e in arrived if e.source.offset < 30], p)


def test_an_event_held_past_the_patience_is_dropped_and_the_events_behind_it_go_on():
    clock = [0.0]
    check = holdback(Ends({0: 10, 1: 10}), patience_s=30.0, clock=lambda: clock[0])
    assert plausible([event(0, 10, message_id="a"), event(0, 3, message_id="b"), event(1, 4, message_id="c")],
                     check, DropReport()) == [event(1, 4, message_id="c")]
    assert check.holding
    clock[0] = 29.0
    assert plausible([], check, DropReport()) == [] and check.holding
    clock[0] = 30.0
    assert [e.message.message_id for e in plausible([], check, DropReport())] == ["b"]
    assert not check.holding
    assert plausible([event(0, 2**62)], check, DropReport()) == [] and not check.holding, "far past: dropped at once"
