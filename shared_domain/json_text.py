"""JSON text: parsing untrusted bytes (bounded nesting, UTF-8 only, text every store can hold), and writing it compact."""

import json
import re
from itertools import accumulate

from .message import unsafe_text_problem

MAX_JSON_DEPTH = 32
# A JSON string literal, or what is left of an unterminated one. Possessive (nothing to backtrack into)
# and unable to fail once it has begun: each match runs to the closing quote or the end of the text, so a
# sub() reads every character once, whatever the text (an unterminated string of escapes included).
_STRING_LITERAL = re.compile(r'"(?:[^"\\]++|\\.?)*+"?', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


class MalformedJson(ValueError):
    """Bytes that are not one UTF-8 JSON document within the nesting bound."""


def loads(data: bytes, max_depth: int = MAX_JSON_DEPTH):
    """Parse a JSON document, refusing what would exhaust the parser instead of raising something else.

    Nesting is measured before parsing (a deep document would otherwise end in RecursionError),
    integers beyond Python's digit limit and the non-standard NaN/Infinity literals are refused.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise MalformedJson(f"not UTF-8: {error}") from None
    # A document cannot nest deeper than it has opening brackets: most have too few to need measuring.
    if text.count("{") + text.count("[") > max_depth and nesting_depth(text) > max_depth:
        raise MalformedJson(f"nested more than {max_depth} levels deep")
    try:
        return _DECODER.decode(text)
    except (ValueError, RecursionError) as error:
        raise MalformedJson(f"not JSON: {error}") from None


def nesting_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in JSON text, ignoring brackets inside strings."""
    brackets = _NOT_BRACKET.sub("", _STRING_LITERAL.sub("", text))
    return max(accumulate(_STEP[bracket] for bracket in brackets), default=0)


def unsafe_strings(document, path: str = "") -> dict[str, list[str]]:
    """Every key or string value that is not storable text (NUL, lone surrogates), by its path."""
    problems: dict[str, list[str]] = {}
    if isinstance(document, str):
        problem = unsafe_text_problem(document)
        if problem:
            problems[path or "_schema"] = [problem]
    elif isinstance(document, list):
        for index, item in enumerate(document):
            problems.update(unsafe_strings(item, f"{path}.{index}" if path else str(index)))
    elif isinstance(document, dict):
        for key, value in document.items():
            inner = f"{path}.{key}" if path else key
            problem = unsafe_text_problem(key)
            if problem:
                problems[repr(inner)] = [f"field name {problem}"]
            else:
                problems.update(unsafe_strings(value, inner))
    return problems


def compact_json(value) -> str:
    """JSON text of a value without spaces, with non-ASCII characters as they are."""
    return _COMPACT.encode(value)


def _refuse_constant(name: str):
    """NaN and Infinity are not JSON."""
    raise ValueError(f"{name} is not a JSON value")


# Made once: json.loads and json.dumps given any argument make a new decoder or encoder per call.
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)
_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
