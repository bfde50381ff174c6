"""Hypothesis strategies for hostile and valid input: record values, headers, JSON bodies and messages."""

import json

from hypothesis import strategies as st

from consumer_service.application.records import IncomingRecord
from shared_domain.message import text_problem

VALID_CLIENT = st.from_regex(r"[A-Za-z0-9_.-]{1,64}", fullmatch=True)
VALID_MESSAGE_ID = st.from_regex(r"[A-Za-z0-9_.:-]{1,128}", fullmatch=True)
VALID_TEXT = st.text(min_size=1, max_size=200).filter(lambda text: text_problem(text, 4096) is None)
# Strings a hostile client sends: any code point, lone surrogates and control characters included.
ANY_TEXT = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=40)
ISO_TIMES = st.one_of(
    st.datetimes(timezones=st.timezones()).map(lambda moment: moment.isoformat()),
    st.sampled_from(["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00", "0001-01-01T00:00:00Z", "2026-02-30"]),
    ANY_TEXT,
)
JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), ANY_TEXT)
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(ANY_TEXT, inner, max_size=4)), max_leaves=12)
# Any JSON a parser gives back (JSON has no NaN or Infinity), e.g. the value of a field a newer writer added.
JSON_DATA = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), ANY_TEXT),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(ANY_TEXT, inner, max_size=4)), max_leaves=12)
# Names a newer (or hostile) writer may add: any text, lone surrogates, NUL and look-alikes of known names included.
ADDED_FIELD_NAMES = st.one_of(ANY_TEXT, st.sampled_from(
    ["", "__proto__", "$where", "a.b", "schemaVersion ", "SchemaVersion", "v ", "V", "\x00", "\ud800", "dlq.reason",
     "other", "line\nbreak", 'quote"', "x" * 10_000]))


@st.composite
def envelopes(draw) -> dict:
    """A message envelope whose every field may be valid, missing, or anything else."""
    fields = {
        "schemaVersion": st.one_of(st.just(1), JSON_SCALARS),
        "messageId": st.one_of(VALID_MESSAGE_ID, JSON_SCALARS),
        "from": st.one_of(VALID_CLIENT, VALID_CLIENT.map(lambda client: client + "\n"), JSON_SCALARS),
        "to": st.one_of(st.sampled_from(["clientB", "clientA"]), VALID_CLIENT, JSON_VALUES),
        "message": st.one_of(VALID_TEXT, ANY_TEXT, JSON_VALUES),
        "sentAt": st.one_of(ISO_TIMES, JSON_SCALARS),
    }
    envelope = {name: draw(value) for name, value in fields.items() if draw(st.integers(0, 9))}
    envelope.update(draw(st.dictionaries(ANY_TEXT, JSON_VALUES, max_size=2)))
    return envelope


def _json_bytes(document) -> bytes:
    """JSON text of a document, lone surrogates escaped as a hostile producer would write them."""
    return json.dumps(document, ensure_ascii=True).encode()


RECORD_VALUES = st.one_of(
    st.none(),
    st.binary(max_size=200),
    envelopes().map(_json_bytes),
    JSON_VALUES.map(_json_bytes),
    st.integers(1, 6000).map(lambda digits: b'{"to": "clientB", "n": ' + b"7" * digits + b"}"),
    st.integers(1, 5000).map(lambda depth: b"[" * depth + b"]" * depth),
    st.integers(1, 5000).map(lambda depth: b'{"a":' * depth + b"1" + b"}" * depth),
    st.builds(lambda head, unit, count: head + unit * count,  # an unterminated string of escapes
              st.sampled_from([b'"', b'{"to": "clientB", "message": "', b"[" * 40 + b'"']),
              st.binary(min_size=1, max_size=4).map(lambda unit: b"\\" + unit), st.integers(1, 5000)),
)
HEADER_NAMES = st.one_of(
    st.sampled_from(["trace-id", "content-type", "replay-count", "replay-of", "dlq.reason", "dlq.error-type",
                     "dlq.attempts", "dlq.failed-at", "dlq.original-topic", "dlq.original-partition",
                     "dlq.original-offset", "dlq.consumer-client", "dlq.truncated"]),
    st.text(alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=20),
)
HEADER_VALUES = st.one_of(
    st.none(), st.binary(max_size=40), ANY_TEXT.map(lambda text: text.encode("utf-8", "surrogatepass")),
    st.integers().map(lambda number: str(number).encode()), st.just(b"9" * 400),
    ISO_TIMES.map(lambda text: text.encode("utf-8", "surrogatepass")),
)


@st.composite
def incoming_records(draw, topic: str = "client-messages") -> IncomingRecord:
    """A record as the Kafka client hands it over: any key, value and headers, perhaps partly unreadable."""
    return IncomingRecord(
        topic=topic,
        partition=draw(st.integers(0, 2)),
        offset=draw(st.integers(0, 2**40)),
        key=draw(st.one_of(st.none(), st.binary(max_size=20), VALID_CLIENT.map(str.encode))),
        value=draw(RECORD_VALUES),
        headers=draw(st.lists(st.tuples(HEADER_NAMES, HEADER_VALUES), max_size=6)),
        defect=draw(st.one_of(st.none(), st.none(), ANY_TEXT)),
    )
