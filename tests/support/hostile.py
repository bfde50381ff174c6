"""Seeded generators of hostile input for end-to-end runs: Kafka records no consumer can store, and HTTP requests.

Every record made here can never be stored, so the pipeline must dead-letter each one exactly
once; its key, `hostile-<n>:` followed by random bytes, says which one it was.
"""

import json
import random
from dataclasses import dataclass, field
from urllib.parse import quote

VALID_ENVELOPE = {"schemaVersion": 1, "from": "clientA", "to": "clientB", "message": "hi",
                  "sentAt": "2026-01-01T00:00:00.000Z"}
NEAR_LIMIT_BYTES = 1_040_000  # under the broker's default 1,048,588-byte record limit, with room for headers


@dataclass
class HostileRecord:
    """A record to produce, the kind of trouble it carries, and whether its header names are raw bytes."""

    kind: str
    key: bytes
    value: bytes | None
    headers: list = field(default_factory=list)

    @property
    def raw_header_names(self) -> bool:
        """Tell whether some header name is bytes (then only librdkafka itself can produce it)."""
        return any(isinstance(name, bytes) for name, _ in self.headers)


def _envelope(rng: random.Random, n: int, **changes) -> bytes:
    """A message envelope, valid but for `changes`, as JSON bytes (lone surrogates escaped, as JSON allows)."""
    envelope = {**VALID_ENVELOPE, "messageId": f"hostile-{n}-{rng.getrandbits(32):x}", **changes}
    return json.dumps(envelope).encode()


def _text(rng: random.Random, size: int) -> str:
    """Random text of any code points, lone surrogates included."""
    return "".join(chr(rng.choice([rng.randrange(0x20, 0x7F), rng.randrange(0xD800, 0xE000), rng.randrange(0x110000)]))
                   for _ in range(size))


def _nul_or_surrogate(rng: random.Random) -> str:
    """Message text hiding one character no store takes: a NUL or a lone surrogate."""
    bad = rng.choice(["\x00", chr(rng.randrange(0xD800, 0xE000))])
    # Around it only characters that cannot pair with a surrogate into a valid one.
    text = "".join(chr(rng.choice([rng.randrange(0x20, 0xD800), rng.randrange(0xE000, 0x110000)]))
                   for _ in range(rng.randrange(0, 20)))
    cut = rng.randrange(len(text) + 1)
    return text[:cut] + bad + text[cut:]


KINDS = {
    "not-json": lambda rng, n: b"\xff" + rng.randbytes(rng.randrange(0, 300)),
    "deep-array": lambda rng, n: b"[" * (depth := rng.randrange(40, 5000)) + b"]" * depth,
    "deep-object": lambda rng, n: b'{"a":' * (depth := rng.randrange(40, 5000)) + b"1" + b"}" * depth,
    "huge-number": lambda rng, n: _envelope(rng, n).replace(b'"schemaVersion": 1', b'"schemaVersion": 1'
                                                            + b"7" * rng.randrange(400, 6000)),
    "overflowing-date": lambda rng, n: _envelope(rng, n, sentAt=rng.choice(
        ["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59.999-00:01"])),
    "newline-client-id": lambda rng, n: _envelope(rng, n, **{rng.choice(["from", "to"]): "client" + rng.choice("AB") + "\n"}),
    "unsafe-text": lambda rng, n: _envelope(rng, n, message=_nul_or_surrogate(rng)),
    "wrong-type": lambda rng, n: _envelope(rng, n, **{rng.choice(list(VALID_ENVELOPE)): rng.choice(
        [None, [], {}, 1.5, True, 10**30])}),
    "not-an-object": lambda rng, n: json.dumps(rng.choice([[1, 2], "text", 42, None, [VALID_ENVELOPE]])).encode(),
    # 0, -1 and "1" are no version (SchemaViolation); 2 is a future major (UnsupportedSchemaVersion): docs/wire-format.md.
    "wrong-version": lambda rng, n: _envelope(rng, n, schemaVersion=rng.choice([0, 2, -1, "1"])),
    "tombstone": lambda rng, n: None,
    # Shapes that made the nesting pre-scan backtrack (quadratic): an unterminated string of escapes.
    "unterminated-escapes": lambda rng, n: rng.choice([b'"', b'{"message": "', b'[' * 40 + b'"']) + rng.choice(
        [b'\\"', b'\\', b'\\"[', b'\\\\"']) * rng.randrange(1000, 50_000),
}


def hostile_records(count: int, seed: int, near_limit: int = 3) -> list[HostileRecord]:
    """`count` records of every kind in turn, some with raw or oversized headers, plus `near_limit` records of ~1 MB."""
    rng = random.Random(seed)
    kinds = sorted(KINDS)
    records = []
    for n in range(count):
        kind = kinds[n % len(kinds)]
        headers = [("trace-id", rng.randbytes(rng.randrange(0, 8)))]
        if n % 7 == 0:
            headers.append(("replay-count", b"9" * rng.randrange(20, 400)))  # beyond a 64-bit integer
        if n % 13 == 0:  # 13 is prime to the number of kinds, so every kind gets some
            headers.append((b"\xff\xfe" + rng.randbytes(3), b"x"))  # a header name that is not UTF-8
        records.append(HostileRecord(kind, b"hostile-%d:" % n + rng.randbytes(rng.randrange(0, 6)), KINDS[kind](rng, n),
                                     headers))
    for n in range(count, count + near_limit):
        records.append(HostileRecord("near-limit", b"hostile-%d:" % n, b"\xff" * NEAR_LIMIT_BYTES, [("trace-id", b"t")]))
    return records


def number_of(key: bytes | None) -> int | None:
    """The number in a hostile record's key, or None for any other key."""
    if not key or not key.startswith(b"hostile-"):
        return None
    return int(key[len(b"hostile-"):key.index(b":")])


def forged_dead_letters(count: int, seed: int) -> list[tuple[bytes, bytes, list]]:
    """Records written straight to the dead-letter topic with context headers no projector can trust."""
    rng = random.Random(seed)
    letters = []
    for n in range(count):
        headers = [
            ("dlq.original-topic", b"forged-%d" % n),  # so that each one is a failure of its own
            ("replay-count", b"9" * rng.randrange(20, 400)),
            ("dlq.original-partition", rng.choice([b"x", b"-1", b"9" * 30, rng.randbytes(4)])),
            ("dlq.original-offset", rng.choice([b"9" * 30, b"1e9", b""])),
            ("dlq.failed-at", rng.choice([b"9999-12-31T23:59:59-01:00", b"yesterday", rng.randbytes(6)])),
            ("dlq.reason", rng.randbytes(rng.randrange(0, 3000))),
            ("dlq.consumer-client", rng.randbytes(4)),
        ]
        letters.append((b"forged-%d" % n, rng.randbytes(rng.randrange(0, 200)), headers))
    return letters


PATHS = ["/send-message", "/send-messages", "/messages", "/failed-messages", "/health", "/ready",
         "/failed-messages/replay", "/failed-messages/discard", "/failed-messages/x:0:1:clientB",
         "/failed-messages/x:0:1:clientB/discard", "//messages", "/messages/", "/nowhere", "/send-message/",
         "/session", "/conversations", "/conversations/clientB/read", "/failed-message-counts", "/assets/common/x",
         "/metrics"]
QUERY_NAMES = ["to", "from", "since", "until", "limit", "cursor", "status", "errorType", "client"]
QUERY_VALUES = ["²", "①", "1e3", "-1", "9" * 30, "9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00",
                "W1tdXQ==", "eyJhIjogMX0=", "clientB%0a", "%ff", "%ed%a0%80", "%00", "clientB"]


def http_requests(count: int, seed: int, tokens: list[str] = ()) -> list[tuple[str, str, bytes, dict]]:
    """(method, raw target, body, headers) for `count` hostile requests over every endpoint, some with `tokens`."""
    rng = random.Random(seed)
    requests = []
    for _ in range(count):
        method = rng.choice(["GET", "POST", "POST", "PUT", "DELETE", "HEAD", "OPTIONS"])
        pairs = [(rng.choice(QUERY_NAMES + ["x", "%ff"]), rng.choice(QUERY_VALUES + [_quoted(rng)]))
                 for _ in range(rng.randrange(0, 4))]
        query = "&".join(f"{quote(name, safe='%')}={quote(value, safe='%:+')}" for name, value in pairs)
        target = rng.choice(PATHS) + ("?" + query if query else "")
        headers = {"Content-Type": rng.choice(["application/json", "application/json", "text/plain", "application/json; charset=latin-1"])}
        credentials = [*(f"Bearer {token}" for token in tokens), "Bearer wrong", "Bearer", "Basic eA==", "Bearer " + "x" * 300]
        if rng.random() < 0.8:
            headers["Authorization"] = rng.choice(credentials)
        requests.append((method, target, _body(rng), headers))
    return requests


def _quoted(rng: random.Random) -> str:
    """Random bytes percent-encoded, so any byte reaches the server's decoder."""
    return "".join(f"%{byte:02x}" for byte in rng.randbytes(rng.randrange(0, 12)))


def _body(rng: random.Random) -> bytes:
    """A request body: a hostile or valid send, a batch, an operator request, or bytes."""
    valid = {"from": "clientA", "to": rng.choice(["clientB", "clientC"]), "message": "fuzz"}
    choices = [
        lambda: json.dumps(valid).encode(),
        lambda: json.dumps({**valid, rng.choice(["from", "to", "message"]): rng.choice(
            [_text(rng, 8), "clientB\n", None, 10**30, [], "x" * 5000, "\x00"])}).encode(),
        lambda: json.dumps([valid, {**valid, "to": _text(rng, 4)}]).encode(),
        lambda: json.dumps({"ids": [_text(rng, 6)], "reason": _text(rng, 10), "filter": {"since": "9999-12-31T23:59:59-01:00"}}).encode(),
        lambda: b"[" * (depth := rng.randrange(30, 3000)) + b"]" * depth,
        lambda: b'{"from": ' + b"1" * rng.randrange(4000, 6000) + b"}",
        lambda: b'{"name": "' + rng.choice([b'\\"', b'\\', b'\\"{']) * rng.randrange(1000, 30_000),  # unterminated
        lambda: rng.randbytes(rng.randrange(0, 100)),
        lambda: b"",
    ]
    return rng.choice(choices)()
