"""Every regex and parser the code applies to untrusted input runs in linear time, timed from 4 KB to 1 MB.

Each target is fed generated text (a short head, then one unit repeated) of 4 KB, 16 KB, 64 KB,
256 KB and 1 MB. Four times the input may cost at most GROWTH times as long (linear is 4x,
quadratic 16x); the run stops at the first step that grows faster, so a quadratic pattern fails
in a second or two instead of running for an hour at 1 MB.
"""

import ast
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumer_service.entrypoints.metrics import FieldLabels
from consumer_service.infrastructure import mongo_failure_projection
from producer_service.application.live import InvalidPosition, Position
from producer_service.entrypoints import paging
from producer_service.entrypoints.quick_send import QuickSend
from producer_service.entrypoints.send_api import SEND_PATH
from shared_adapters import http_worker
from shared_domain import failed_messages, json_text, message
from shared_domain.envelope import PoisonRecord, decode
from shared_domain.stored_events import decode_stored_event

SIZES = (4 * 1024, 16 * 1024, 64 * 1024, 256 * 1024, 1024 * 1024)
GROWTH = 8.0
NOISE_S = 0.003
LINEAR = settings(max_examples=6, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@dataclass(frozen=True)
class Target:
    """A regex or parser applied to untrusted input, the characters it treats specially, and its worst shapes."""

    apply: Callable[[str], object]
    alphabet: str
    worst: tuple[tuple[str, str], ...]  # (head, repeated unit)


def _quietly(parse: Callable[[bytes], object], *refusals: type[Exception]) -> Callable[[str], object]:
    """Apply a parser to the text's UTF-8 bytes, where refusing the input is a fine outcome."""
    def apply(text: str):
        try:
            return parse(text.encode("utf-8", "surrogatepass"))
        except refusals:
            return None
    return apply


def _head_judged(text: str) -> object:
    """The worker's look at an arriving request: its head as given, then a body."""
    data = text.encode("latin-1", "replace")
    return http_worker.arrival(data + b"\r\n\r\n" + data, len(data) + 8, len(data) * 2 + 8)


def _plain_send(text: str) -> bool:
    """QuickSend's look at a request: whether its media type and declared length, both the given text, make it a plain
    send."""
    quick = QuickSend(None, SimpleNamespace(settings=SimpleNamespace(max_body_bytes=10**9)), SimpleNamespace(enabled=True))
    return quick._plain_send({"PATH_INFO": SEND_PATH, "REQUEST_METHOD": "POST", "HTTP_AUTHORIZATION": "Bearer x",
                              "CONTENT_TYPE": text, "CONTENT_LENGTH": text})


TARGETS = {
    "json_text.nesting_depth": Target(json_text.nesting_depth, '"\\[]{}a ', (('"', '\\"'), ('"', "\\"), ("", '"\\'),
                                                                          ("[", '"\\"['), ("", "["))),
    "json_text.loads": Target(_quietly(json_text.loads, json_text.MalformedJson), '"\\[]{}a:,1 ',
                              (('{"a": "', '\\"'), ("", '"\\"'), ("", "[1,"))),
    "envelope.decode": Target(_quietly(decode, PoisonRecord), '"\\[]{}a:,1 ',
                              (('{"to": "clientB", "message": "', '\\"'), ('{"message": "', "a"))),
    "stored_events.decode": Target(_quietly(decode_stored_event, ValueError, KeyError, TypeError, RecursionError),
                                   '"\\[]{}a:,1 ', (('{"v": 1, "message": "', '\\"'),)),
    "message.CLIENT_ID_PATTERN": Target(message.client_id_problem, "aZ9_.-\n ", (("", "a"), ("", "a\n"))),
    "message.MESSAGE_ID_PATTERN": Target(message.message_id_problem, "aZ9_.:-\n ", (("", "a:"),)),
    "message.FORBIDDEN_CONTROL_CHARS": Target(lambda text: message.text_problem(text, 10**9), "a \t\n\x7f\x01",
                                              (("", "a"), ("", " "))),
    "message.SURROGATES": Target(message.unsafe_text_problem, "a\ud800\udc00\x00", (("", "a"),)),
    "mongo_failure_projection._HEADER_NUMBER": Target(lambda text: mongo_failure_projection.header_number(text, 0), "09a",
                                                      (("", "9"),)),
    "failed_messages.ERROR_TYPE_PATTERN": Target(failed_messages.error_type_problem, "aZ9_. ", (("", "a"),)),
    "failed_messages.failure_source (a record's replay-of header)": Target(
        failed_messages.failure_source, "a:9-", (("", ":"), ("", "9"), ("t:", "9"), ("t:1:", "9"))),
    "http_worker head (_CONTENT_LENGTH, _TRANSFER_ENCODING, _EXPECT)": Target(
        _head_judged, "\r\nconte-lgh:transfer-encodingexpct 9\t",
        (("GET / HTTP/1.1", "\r\ncontent-length: "), ("GET / HTTP/1.1\r\ncontent-length:", " \t"),
         ("", "\r\ntransfer-encoding"), ("", "\r\nexpect"))),
    "http_worker stream request starts": Target(
        lambda text: text.encode("latin-1", "replace").startswith(http_worker.stream_request_starts("GET", ["/stream"])),
        "GET /stream?", (("GET /stream", "?"), ("", "GET /stream"))),
    "quick_send plain send (media type, declared length)": Target(
        _plain_send, "application/json; 9", (("application/json", " "), ("", ";"), ("", "9"))),
    "paging._PAGE_SIZE": Target(lambda text: paging._limit(text, 50, 1000, {}), "09a", (("", "9"),)),
    "metrics._SAFE_FIELD_NAME": Target(FieldLabels(limit=0), "aZ9_.-\n ", (("", "a"), ("", "a\n"))),
    "live.Position.decode": Target(_quietly(lambda data: Position.decode(data.decode()), InvalidPosition),
                                   "eyJ9W3sx=_-", (("", "W"), ("", "e30"))),
}
# Every compiled pattern of the product, and the target that times it.
COVERED = {
    ("shared_domain.json_text", "_STRING_LITERAL"): "json_text.nesting_depth",
    ("shared_domain.json_text", "_NOT_BRACKET"): "json_text.nesting_depth",
    ("shared_domain.message", "CLIENT_ID_PATTERN"): "message.CLIENT_ID_PATTERN",
    ("shared_domain.message", "MESSAGE_ID_PATTERN"): "message.MESSAGE_ID_PATTERN",
    ("shared_domain.message", "FORBIDDEN_CONTROL_CHARS"): "message.FORBIDDEN_CONTROL_CHARS",
    ("shared_domain.message", "SURROGATES"): "message.SURROGATES",
    ("consumer_service.infrastructure.mongo_failure_projection", "_HEADER_NUMBER"): "mongo_failure_projection._HEADER_NUMBER",
    ("shared_domain.failed_messages", "ERROR_TYPE_PATTERN"): "failed_messages.ERROR_TYPE_PATTERN",
    ("shared_adapters.http_worker", "_CONTENT_LENGTH"): "http_worker head (_CONTENT_LENGTH, _TRANSFER_ENCODING, _EXPECT)",
    ("shared_adapters.http_worker", "_TRANSFER_ENCODING"): "http_worker head (_CONTENT_LENGTH, _TRANSFER_ENCODING, _EXPECT)",
    ("shared_adapters.http_worker", "_EXPECT"): "http_worker head (_CONTENT_LENGTH, _TRANSFER_ENCODING, _EXPECT)",
    ("producer_service.entrypoints.paging", "_PAGE_SIZE"): "paging._PAGE_SIZE",
    ("consumer_service.entrypoints.metrics", "_SAFE_FIELD_NAME"): "metrics._SAFE_FIELD_NAME",
}


def _elapsed(apply: Callable[[str], object], text: str, repeats: int = 3) -> float:
    """The best of `repeats` timings of one application."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        apply(text)
        best = min(best, time.perf_counter() - start)
    return best


def assert_linear(name: str, head: str, unit: str) -> None:
    """Time the target on head + unit repeated, at each size; fail at the first step that grows faster than linear."""
    apply, previous, previous_text = TARGETS[name].apply, None, None
    for size in SIZES:
        text = head + unit * ((size - len(head)) // len(unit) + 1)
        elapsed = _elapsed(apply, text)
        if previous is not None and elapsed > GROWTH * previous + NOISE_S:
            # Timed again, longer, before judging: another process taking the CPU slows one timing, not the
            # growth of the best of many; super-linear growth stays.
            previous, elapsed = _elapsed(apply, previous_text, 9), _elapsed(apply, text, 9)
        if previous is not None:
            assert elapsed <= GROWTH * previous + NOISE_S, (
                f"{name} on {head[:20]!r} + {unit!r}*n: {previous * 1000:.1f} ms at {size // 4 // 1024} KB, "
                f"{elapsed * 1000:.1f} ms at {size // 1024} KB (4x the input, {elapsed / previous:.0f}x the time)")
        previous, previous_text = elapsed, text


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_the_known_worst_shapes_cost_linear_time_up_to_1_mb(name):
    for head, unit in TARGETS[name].worst:
        assert_linear(name, head, unit)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_generated_shapes_cost_linear_time_up_to_1_mb(name):
    alphabet = TARGETS[name].alphabet

    @given(head=st.text(alphabet, max_size=4), unit=st.text(alphabet, min_size=1, max_size=4))
    @LINEAR
    def check(head, unit):
        assert_linear(name, head, unit)
    check()


def test_the_unterminated_string_of_escapes_that_was_quadratic_is_linear():
    assert_linear("json_text.nesting_depth", '{"message": "', '\\"')


def _product_sources():
    """(module name, source) of every module of the four product packages, read without importing them."""
    root = Path(__file__).resolve().parents[2]
    for package in ("shared_domain", "shared_adapters", "producer_service", "consumer_service"):
        for path in sorted((root / package).rglob("*.py")):
            yield ".".join(path.relative_to(root).with_suffix("").parts), path.read_text(encoding="utf-8")


def _compiled_patterns(source: str) -> set[str]:
    """The names a module binds to re.compile(...) results."""
    return {target.id for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Call) and ast.unparse(node.value.func) == "re.compile"
            for target in node.targets if isinstance(target, ast.Name)}


def test_every_compiled_pattern_of_the_product_is_timed_here():
    compiled = {(module, name) for module, source in _product_sources() for name in _compiled_patterns(source)}
    assert compiled == set(COVERED), f"patterns without a timing target: {compiled - set(COVERED)}; " \
                                     f"targets without a pattern: {set(COVERED) - compiled}"
    assert set(COVERED.values()) <= set(TARGETS)


def test_no_product_code_applies_a_regex_it_did_not_compile_at_module_level():
    uses = [f"{module}:{number}: {line.strip()}" for module, source in _product_sources()
            for number, line in enumerate(source.splitlines(), 1)
            if re.search(r"\bre\.(match|search|fullmatch|sub|subn|split|findall|finditer)\(", line)]
    assert not uses, "compile the pattern at module level so that the timing test sees it:\n" + "\n".join(uses)
