"""The message rules, as the send schema applies them, and the ids and times a sent message is given."""

import re
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from bson.tz_util import utc as bson_utc
from hypothesis import event, given
from hypothesis import strategies as st
from marshmallow import ValidationError

from shared_domain.clock import parse_iso, to_iso, to_millis
from shared_domain.message import message_id_problem, new_message_id
from shared_domain.schemas import EnvelopeSchema, SendMessageSchema
from tests.unit.strategies import ANY_TEXT, JSON_VALUES, VALID_TEXT

VALID = {"from": "clientA", "to": "clientB", "message": "hello"}


def load(body, max_length=4096):
    """Load a body with the send schema."""
    return SendMessageSchema(max_length=max_length).load(body)


def test_a_valid_message_loads_into_domain_names():
    assert load(VALID) == {"sender": "clientA", "recipient": "clientB", "text": "hello"}


def test_a_client_chosen_message_id_is_kept():
    assert load({**VALID, "messageId": "order-42:1"})["message_id"] == "order-42:1"


def test_sending_to_oneself_is_allowed():
    assert load({**VALID, "to": "clientA"})["recipient"] == "clientA"


@pytest.mark.parametrize(
    "change, field",
    [
        ({"to": None}, "to"),
        ({"to": ""}, "to"),
        ({"to": "client B"}, "to"),
        ({"from": "x" * 65}, "from"),
        ({"from": 42}, "from"),
        ({"message": "   \n\t"}, "message"),
        ({"message": "bell\x07"}, "message"),
        ({"message": "x" * 4097}, "message"),
        ({"message": ["not", "text"]}, "message"),
        ({"messageId": "has space"}, "messageId"),
        ({"extra": 1}, "extra"),
    ],
)
def test_each_broken_field_is_named(change, field):
    body = {key: value for key, value in {**VALID, **change}.items() if value is not None}
    with pytest.raises(ValidationError) as caught:
        load(body)
    assert field in caught.value.normalized_messages()


def test_missing_fields_are_each_reported_and_the_sender_may_be_left_to_the_token():
    with pytest.raises(ValidationError) as caught:
        load({})
    assert set(caught.value.normalized_messages()) == {"to", "message"}


def test_newline_and_tab_are_allowed_in_text():
    assert load({**VALID, "message": "line one\n\tline two"})["text"] == "line one\n\tline two"


def test_the_length_limit_is_configurable():
    with pytest.raises(ValidationError):
        load({**VALID, "message": "abcdef"}, max_length=5)
    assert load({**VALID, "message": "abcde"}, max_length=5)["text"] == "abcde"


def test_value_objects_refuse_what_the_rules_refuse():
    from shared_domain.message import ClientId, InvalidValue, MessageId, MessageText

    assert ClientId("client.B-1") == "client.B-1"
    for make, value in ((ClientId, "a b"), (MessageId, ""), (MessageText, "\x00")):
        with pytest.raises(InvalidValue):
            make(value)
    with pytest.raises(InvalidValue):
        MessageText("too long", max_length=3)


def test_a_fresh_message_id_is_a_random_uuid_in_its_usual_form_and_never_repeats():
    ids = [new_message_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for message_id in ids:
        parsed = uuid.UUID(message_id)
        assert (str(parsed), parsed.version, parsed.variant) == (message_id, 4, uuid.RFC_4122)
        assert message_id_problem(message_id) is None


OFFSETS = st.timedeltas(min_value=-timedelta(hours=23, minutes=59), max_value=timedelta(hours=23, minutes=59))
ZONES = st.none() | st.just(timezone.utc) | st.just(bson_utc) | st.builds(timezone, OFFSETS)


@given(st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=ZONES))
def test_a_moment_is_written_in_utc_to_the_millisecond_with_a_z(moment):
    text = to_iso(moment)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", text), text
    assert parse_iso(text) == to_millis(moment)


@given(st.lists(st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=ZONES),
                min_size=1, max_size=5), st.lists(st.integers(min_value=0, max_value=4), max_size=20))
def test_each_moment_is_written_as_itself_whatever_was_written_before(moments, order):
    # to_iso remembers the last moment it wrote: a moment written again, or after others, still gets its own text.
    for index in order + list(range(len(moments))):
        moment = moments[index % len(moments)]
        assert parse_iso(to_iso(moment)) == to_millis(moment)


def _outcome(load, data):
    """What a load returns, or the messages of the ValidationError it raises."""
    try:
        return "loaded", load(data)
    except ValidationError as error:
        return "refused", error.normalized_messages()


ENVELOPE_KEYS = ("schemaVersion", "messageId", "from", "to", "message", "sentAt")


@given(st.data())
def test_loading_one_message_gives_what_marshmallows_load_gives(data):
    schema = data.draw(st.sampled_from([SendMessageSchema(max_length=20), EnvelopeSchema(max_length=20)]))
    keys = ENVELOPE_KEYS if isinstance(schema, EnvelopeSchema) else ("from", "to", "message", "messageId")
    good = {"schemaVersion": st.just(1), "messageId": st.sampled_from(["m-1", "a:b.c"]),
            "from": st.sampled_from(["clientA", "x" * 64]), "to": st.sampled_from(["clientB", "c.d_e-f"]),
            "message": VALID_TEXT, "sentAt": st.sampled_from(["2026-01-31T12:00:00Z", "2026-01-31T12:00:00+01:00"])}
    document = {}
    for key in keys:  # each field as it should be, mostly; else missing, or any JSON, or any text
        change = data.draw(st.sampled_from(["keep"] * 6 + ["drop", "any JSON", "any text"]), label=key)
        if change != "drop":
            document[key] = data.draw({"keep": good[key], "any JSON": JSON_VALUES, "any text": ANY_TEXT}[change])
    if data.draw(st.integers(0, 3)) == 0:  # fields no version knows
        document.update(data.draw(st.dictionaries(st.sampled_from(["extra", "v", "text"]), JSON_VALUES, min_size=1)))
    whole = data.draw(st.one_of(st.just(document), st.just(document), st.just(document), JSON_VALUES))
    outcome = _outcome(schema.load_one, whole)
    event(f"{type(schema).__name__} {outcome[0]}")
    assert outcome == _outcome(schema.load, whole)
