"""Message pages: every stored message also in small ordered documents, so that any page a client reads is a few lookups by _id.

Each stream of messages is a tree of three levels in (sentAt, _id) order: a root lists nodes, a
node lists leaves, a leaf holds up to LEAF messages; a stream of LEAF messages or fewer is its root
alone, holding them. Every node and leaf is named after the lowest key it covers ({sentAt, _id}:
FerretDB v1 refuses arrays in arrays), and holds what lies between that key and the next one its
parent lists: what lies beyond is a leftover of a split and is ignored. Three streams hold each message, all written by
the one projector of the recipient's stored-events partition:
- the conversation stream of its recipient and sender (one direction of a conversation),
- the received stream of its recipient,
- the sent stream of its sender for that partition.
A page of a conversation merges its two directions; a page of a client's messages merges its
received stream with its sent streams. A message is placed by its key, wherever it arrives from,
and placing it again changes nothing: a batch redelivered after a crash or a rebalance is harmless.
"""

import heapq
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import islice

from .clock import as_utc, to_millis
from .documents import message_document
from .stored_events import StoredEvent

LEAF = 64
NODE = 128

Key = tuple[datetime, str]
Load = Callable[[str], dict | None]


def conversation_stream(recipient: str, sender: str) -> str:
    """The stream of what `sender` sent to `recipient` ('/' is in no client id)."""
    return f"t/c/{recipient}/{sender}"


def received_stream(client: str) -> str:
    """The stream of what the client received."""
    return f"t/i/{client}"


def sent_stream(client: str, partition: int) -> str:
    """The stream of what the client sent to the recipients of one stored-events partition."""
    return f"t/o/{client}/{partition}"


def streams_of(partition: int, recipient: str, sender: str) -> tuple[str, ...]:
    """The streams that hold a message of a stored-events partition."""
    return conversation_stream(recipient, sender), received_stream(recipient), sent_stream(sender, partition)


def page_entry(event: StoredEvent) -> dict:
    """A message as its streams hold it: its stored document without when it was stored."""
    document = message_document(event.message, event.source, event.message.sent_at)
    del document["storedAt"]
    return document


def visible_streams(any_of: tuple[dict, ...], equals: dict, partitions: int) -> list[str] | None:
    """The streams holding exactly the messages a query may list; None when no streams do (everyone's messages).

    `any_of` is who may see what: one conversation, or what one client sent or received; `equals`
    narrows it by recipient (`to`) and sender (`from`).
    """
    if len(any_of) == 1 and set(any_of[0]) == {"conversation"}:
        one, _, other = any_of[0]["conversation"].partition("|")
        streams = [("c", one, other), ("c", other, one)]
    elif len(any_of) == 2 and any_of[0].keys() == {"from"} and any_of[1] == {"to": any_of[0]["from"]}:
        client = any_of[0]["from"]
        streams = [("i", client), *(("o", client, partition) for partition in range(partitions))]
    else:
        return None
    to, sender = equals.get("to"), equals.get("from")
    if set(equals) - {"to", "from"}:
        return None
    narrowed = []
    for kind, client, *rest in streams:
        if kind == "c":
            recipient, from_ = client, rest[0]
        elif kind == "i":
            recipient, from_ = client, sender
        else:
            recipient, from_ = to, client
        if (to is not None and to != recipient) or (sender is not None and sender != from_):
            continue
        if recipient is not None and from_ is not None:
            narrowed.append(conversation_stream(recipient, from_))
        else:
            narrowed.append(received_stream(recipient) if kind == "i" else sent_stream(client, rest[0]))
    return list(dict.fromkeys(narrowed))


def place(pages: "PageWriter", events: Iterable[tuple[int, StoredEvent]]) -> None:
    """Place each (stored-events partition, event) in its streams."""
    for partition, event in events:
        entry = page_entry(event)
        for stream in streams_of(partition, event.message.recipient, event.message.sender):
            pages.add(stream, entry)


def key_of(message: dict) -> Key:
    """Where a message sits in a stream: its sending time, then its _id."""
    return as_utc(message["sentAt"]), message["_id"]


def _label(low: dict | None) -> str:
    """How a node or leaf is named after the lowest key it covers."""
    return "-" if low is None else f"{as_utc(low['sentAt']).isoformat()}|{low['_id']}"


def _node_id(stream: str, low: dict | None) -> str:
    return f"{stream}/n/{_label(low)}"


def _leaf_id(stream: str, low: dict | None) -> str:
    return f"{stream}/l/{_label(low)}"


def _key(low: dict | None) -> Key | None:
    return None if low is None else key_of(low)


def _index_of(lows: list, key: Key, strictly_below: bool = False) -> int:
    """The entry whose range holds `key` (or, with `strictly_below`, the keys just below it)."""
    # The first entry's low is where its parent's range starts: only the others' lows are compared.
    return (bisect_left if strictly_below else bisect_right)(lows, key, lo=1, key=_key) - 1


def _clipped(entries: list, key: Callable, high: Key | None) -> list:
    """The entries below the next sibling's low: those beyond are a split's leftover.

    Entries are in key order, so when the last is below `high` all are, which is the usual case.
    """
    if high is None or not entries or (last := key(entries[-1])) is None or last < high:
        return entries
    return [entry for entry in entries if (low := key(entry)) is None or low < high]


class PageWriter:
    """Places messages in their streams, loading documents through `load` and remembering what it changed.

    `writes()` orders the changed documents so that a crash between any two writes loses no message
    from view: new documents first, leaves before the nodes and roots listing them, then existing
    ones from the root down, so that a document loses a message only once the one that took it
    over is written and listed by its parent.
    """

    def __init__(self, load: Load, leaf: int = LEAF, node: int = NODE):
        self._load, self._leaf, self._node = load, leaf, node
        self._docs: dict[str, dict] = {}
        self._created: list[str] = []
        self._changed: set[str] = set()

    def add(self, stream: str, message: dict) -> None:
        """Place a message (a stored document without storedAt) in a stream, unless it is there already."""
        message = {**message, "sentAt": to_millis(message["sentAt"])}
        root = self._get(stream) or self._create({"_id": stream, "messages": []})
        if "messages" in root and len(root["messages"]) >= self._leaf:
            self._grow(root)
        if "messages" in root:
            self._insert(root, message)
            return
        key = key_of(message)
        at_node = _index_of(root["nodes"], key)
        node = self._child(root, "nodes", at_node, _node_id(stream, root["nodes"][at_node]), "leaves", _key)
        at_leaf = _index_of(node["leaves"], key)
        leaf = self._child(node, "leaves", at_leaf, _leaf_id(stream, node["leaves"][at_leaf]), "messages", key_of)
        at = self._insert(leaf, message)
        if at is not None and len(leaf["messages"]) > self._leaf:
            last = at_node == len(root["nodes"]) - 1 and at_leaf == len(node["leaves"]) - 1
            moved = self._split(leaf, "messages", at if last and at == len(leaf["messages"]) - 1 else None,
                                lambda message: {"sentAt": message["sentAt"], "_id": message["_id"]}, _leaf_id, stream)
            node["leaves"].insert(at_leaf + 1, moved)
            self._changed.add(node["_id"])
            if len(node["leaves"]) > self._node:
                last = at_node == len(root["nodes"]) - 1 and at_leaf + 1 == len(node["leaves"]) - 1
                low = self._split(node, "leaves", len(node["leaves"]) - 1 if last else None, lambda low: low,
                                  _node_id, stream)
                root["nodes"].insert(at_node + 1, low)
                self._changed.add(root["_id"])

    def _insert(self, doc: dict, message: dict) -> int | None:
        """Insert a message in order among the document's; where it went, or None when it was there already."""
        messages, key = doc["messages"], key_of(message)
        at = bisect_left(messages, key, key=key_of)
        if at < len(messages) and key_of(messages[at]) == key:
            return None
        doc["messages"].insert(at, message)
        self._changed.add(doc["_id"])
        return at

    def _grow(self, root: dict) -> None:
        """Turn a stream whose root holds its messages into a tree: a root listing one node listing one leaf."""
        stream = root["_id"]
        self._create({"_id": _leaf_id(stream, None), "low": None, "messages": root.pop("messages")})
        self._create({"_id": _node_id(stream, None), "low": None, "leaves": [None]})
        root["nodes"] = [None]
        self._changed.add(stream)

    def writes(self) -> list[dict]:
        """The documents to write, in the order that keeps every message in view."""
        level = lambda doc_id: 0 if "nodes" in self._docs[doc_id] else 1 if "leaves" in self._docs[doc_id] else 2
        created = sorted(self._created, key=level, reverse=True)
        existing = sorted(self._changed - set(self._created), key=level)
        return [self._docs[doc_id] for doc_id in [*created, *existing]]

    def _get(self, doc_id: str) -> dict | None:
        if doc_id not in self._docs:
            loaded = self._load(doc_id)
            if loaded is None:
                return None
            self._docs[doc_id] = loaded
        return self._docs[doc_id]

    def _create(self, doc: dict) -> dict:
        self._docs[doc["_id"]] = doc
        self._created.append(doc["_id"])
        self._changed.add(doc["_id"])
        return doc

    def _child(self, parent: dict, listed: str, at: int, child_id: str, entries: str, key: Callable) -> dict:
        """A listed child, without what lies beyond its next sibling's low (an empty one when never written)."""
        child = self._get(child_id)
        if child is None:  # cannot happen through `writes`; kept readable should the store lose one
            child = self._create({"_id": child_id, "low": parent[listed][at], entries: []})
        lows = parent[listed]
        high = _key(lows[at + 1]) if at + 1 < len(lows) else None
        kept = _clipped(child[entries], key, high)
        if len(kept) != len(child[entries]):
            child[entries] = kept
            self._changed.add(child_id)
        return child

    def _split(self, doc: dict, entries: str, at: int | None, low_of: Callable, id_of: Callable, stream: str) -> list:
        """Move the entries from `at` (the upper half when None) into a new document; return its low."""
        listed = doc[entries]
        at = len(listed) // 2 if at is None else at
        low = low_of(listed[at])
        self._create({"_id": id_of(stream, low), "low": low, entries: listed[at:]})
        doc[entries] = listed[:at]
        return low


@dataclass(frozen=True)
class Bounds:
    """The keys a page may hold, both exclusive (None: unbounded), and which end it starts from."""

    low: Key | None = None
    high: Key | None = None
    newest_first: bool = False

    @classmethod
    def of(cls, since: datetime | None, until: datetime | None, after: tuple[datetime, str] | None,
           newest_first: bool) -> "Bounds":
        """The bounds of a page: sent from `since` (inclusive) to `until` (exclusive), beyond the cursor `after`."""
        low = None if since is None else (to_millis(since), "")  # every _id sorts after ""
        high = None if until is None else (to_millis(until), "")
        if after is not None:
            cursor = (to_millis(after[0]), after[1])
            if newest_first:
                high = cursor if high is None else min(high, cursor)
            else:
                low = cursor if low is None else max(low, cursor)
        return cls(low, high, newest_first)

    def holds(self, key: Key) -> bool:
        """Whether a key lies within the bounds."""
        return (self.low is None or key > self.low) and (self.high is None or key < self.high)

    def passed(self, key: Key) -> bool:
        """Whether a walk in page order has gone beyond the bounds at `key`."""
        if self.newest_first:
            return self.low is not None and key <= self.low
        return self.high is not None and key >= self.high


def walk(load: Load, stream: str, bounds: Bounds) -> Iterator[dict]:
    """The stream's messages within the bounds, in page order, reading each document only when reached."""
    root = load(stream)
    if root is None:
        return
    if "messages" in root:
        candidates = reversed(root["messages"]) if bounds.newest_first else iter(root["messages"])
    else:
        candidates = _from_start(load, stream, root["nodes"], bounds)
    for message in candidates:
        key = key_of(message)
        if bounds.holds(key):
            yield message
        elif bounds.passed(key):
            return


def _from_start(load: Load, stream: str, nodes: list, bounds: Bounds) -> Iterator[dict]:
    """A tree's messages in page order from the leaf where the bounds start."""
    start = bounds.high if bounds.newest_first else bounds.low
    at_node = _start(nodes, start, bounds.newest_first)
    for index in range(at_node, -1, -1) if bounds.newest_first else range(at_node, len(nodes)):
        node_high = _key(nodes[index + 1]) if index + 1 < len(nodes) else None
        node = load(_node_id(stream, nodes[index])) or {"leaves": []}
        leaves = _clipped(node["leaves"], _key, node_high)
        if not leaves:
            continue
        first = _start(leaves, start, bounds.newest_first) if index == at_node else (
            len(leaves) - 1 if bounds.newest_first else 0)
        for at_leaf in range(first, -1, -1) if bounds.newest_first else range(first, len(leaves)):
            leaf_high = _key(leaves[at_leaf + 1]) if at_leaf + 1 < len(leaves) else node_high
            leaf = load(_leaf_id(stream, leaves[at_leaf])) or {"messages": []}
            messages = _clipped(leaf["messages"], key_of, leaf_high)
            yield from reversed(messages) if bounds.newest_first else messages


def _start(lows: list, key: Key | None, newest_first: bool) -> int:
    """The entry to start a walk at: the one holding `key` (just below it, newest first), or an end."""
    if key is None:
        return len(lows) - 1 if newest_first else 0
    return _index_of(lows, key, strictly_below=newest_first)


def page(load: Load, streams: Iterable[str], bounds: Bounds, limit: int,
         keep: Callable[[dict], bool] = lambda message: True) -> list[dict]:
    """The first `limit` messages of the streams merged, in page order, each once."""
    merged = heapq.merge(*(walk(load, stream, bounds) for stream in streams), key=key_of,
                         reverse=bounds.newest_first)
    return list(islice(_once(message for message in merged if keep(message)), limit))


def _once(messages: Iterator[dict]) -> Iterator[dict]:
    """Skip a message met again right after itself (a client's message to itself is in two of its streams)."""
    last = None
    for message in messages:
        if message["_id"] != last:
            last = message["_id"]
            yield message
