"""The message rules, as the send schema applies them."""

import pytest
from marshmallow import ValidationError

from shared_domain.schemas import SendMessageSchema

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
