"""Conversation views: what a client's conversation list, a stream's start and every page of messages read.

Each view is written by the one projector that owns a partition of the stored-events topic
(keyed by recipient):
- a client's inbox: per sender, the latest message, a preview, how many arrived and when the last
  RECENT were sent; how many it received in all; and the highest source offset among the client's
  messages (all in one partition of the message topic);
- a client's outbox of one stored-events partition: per recipient in that partition, the latest
  message, a preview and the highest source offset; and how many it sent them in all;
- a direction per (recipient, sender): how many messages the sender sent the recipient;
- the message buckets (message_buckets) that these three count messages into.
A stored event changes a view only when its source offset is beyond what the view (or, in an
outbox, the recipient's entry) has applied: a recipient's messages are stored and announced in
offset order, so a batch announced or read again after a crash or a rebalance changes nothing.
Buckets are written before the views that count into them, and take a message only once.
"""

from collections.abc import Callable, Iterable
from datetime import datetime

from .clock import as_utc, to_iso
from .documents import message_document
from .message_buckets import (BUCKET, Sequence, add_to_bucket, bucket_id, direction_sequence, empty_bucket, is_bucket,
                              received_sequence, sent_sequence)
from .partitioning import partition_of
from .stored_events import StoredEvent

VIEWS_COLLECTION = "conversation_views"
# The shape of the views; a store whose views are older is rebuilt (`rebuild-views --if-missing`).
VIEWS_VERSION = 2
VERSION_ID = "version"
PREVIEW_CHARS = 80
# An inbox entry keeps the sending times of the sender's last messages, so that unread counts are exact
# for a client that read up to any of them.
RECENT = 50


def inbox_id(client: str) -> str:
    """The _id of the client's inbox ('/' is in no client id)."""
    return f"in/{client}"


def outbox_id(client: str, partition: int) -> str:
    """The _id of the client's outbox for the recipients of one stored-events partition."""
    return f"out/{client}/{partition}"


def direction_id(recipient: str, sender: str) -> str:
    """The _id of the count of what `sender` sent to `recipient`."""
    return f"dir/{recipient}/{sender}"


def page_sources(visible: tuple[dict, ...], equals: dict, partitions: Callable[[], int]) -> list[tuple[str, str]] | None:
    """The (sequence, view counting it) a page of messages draws from; None when no sequences serve it (everyone's).

    `visible` is one conversation (`{"conversation": "A|B"}`) or a client's messages (`{"from": C}, {"to": C}`);
    `equals` may narrow either to a sender (`from`) and a recipient (`to`).
    """
    sender, recipient = equals.get("from"), equals.get("to")
    narrowed = lambda pairs: [(direction_sequence(to, by), direction_id(to, by)) for to, by in pairs
                              if sender in (None, by) and recipient in (None, to)]
    if len(visible) == 1 and set(visible[0]) == {"conversation"}:
        one, _, other = visible[0]["conversation"].partition("|")
        return narrowed(sorted({(one, other), (other, one)}))
    if len(visible) != 2 or visible[0].keys() != {"from"} or visible[1] != {"to": visible[0]["from"]}:
        return None
    client, sources = visible[0]["from"], []
    if recipient in (None, client):
        sources += ([(received_sequence(client), inbox_id(client))] if sender is None else narrowed([(client, sender)]))
    if sender in (None, client):
        sources += ([(sent_sequence(client, partition), outbox_id(client, partition)) for partition in range(partitions())]
                    if recipient is None else narrowed([(recipient, client)]))
    return list(dict.fromkeys(sources))


def read_marker_id(client: str, partner: str) -> str:
    """The _id of what the client has read of its conversation with `partner`."""
    return f"{client}\x00{partner}"


def empty_view(view_id: str) -> dict:
    """A view with nothing applied yet."""
    if is_bucket(view_id):
        return empty_bucket(view_id)
    if view_id.startswith("out/"):
        return {"_id": view_id, "count": 0, "peers": []}
    if view_id.startswith("dir/"):
        return {"_id": view_id, "offset": -1, "count": 0}
    return {"_id": view_id, "offset": -1, "count": 0, "peers": []}


class Views(dict):
    """Views by _id, each fetched by `load` the first time it is asked for."""

    def __init__(self, load: Callable[[str], dict]):
        super().__init__()
        self._load = load

    def __missing__(self, view_id: str) -> dict:
        view = self[view_id] = self._load(view_id)
        return view


def apply_events(views: Views, events: Iterable[tuple[int, StoredEvent]]) -> list[str]:
    """Apply each (stored-events partition, event) to the views it concerns; return the ids changed, buckets first."""
    buckets, changed = set(), set()
    for partition, event in events:
        message, offset = event.message, event.source.offset
        inbox = views[inbox_id(message.recipient)]
        if offset > inbox["offset"]:
            buckets.add(_count_in(views, inbox, received_sequence(message.recipient), event))
            inbox["offset"] = offset
            entry = _entry(inbox, message.sender, count=0, recent=[])
            entry["count"] += 1
            entry["recent"] = [*entry["recent"], message.sent_at][-RECENT:]
            _note(entry, event)
            changed.add(inbox["_id"])
        direction = views[direction_id(message.recipient, message.sender)]
        if offset > direction["offset"]:
            buckets.add(_count_in(views, direction, direction_sequence(message.recipient, message.sender), event))
            direction["offset"] = offset
            changed.add(direction["_id"])
        outbox = views[outbox_id(message.sender, partition)]
        entry = _entry(outbox, message.recipient)
        if offset > entry["offset"]:
            buckets.add(_count_in(views, outbox, sent_sequence(message.sender, partition), event))
            _note(entry, event)
            changed.add(outbox["_id"])
    return sorted(buckets) + sorted(changed)


def _count_in(views: Views, head: dict, sequence: str, event: StoredEvent) -> str:
    """Put the event's message in the sequence's next place, counted by its head view; return the bucket's _id."""
    bucket = views[bucket_id(sequence, head.setdefault("count", 0) // BUCKET)]  # views older than counts start at 0
    add_to_bucket(bucket, bucket_entry(event))
    head["count"] += 1
    return bucket["_id"]


def bucket_entry(event: StoredEvent) -> dict:
    """A message as a bucket holds it: its stored document without when it was stored."""
    document = message_document(event.message, event.source, event.message.sent_at)
    del document["storedAt"]
    return document


def _entry(view: dict, peer: str, **extra) -> dict:
    """The view's entry for `peer`, added empty when absent."""
    for entry in view["peers"]:
        if entry["with"] == peer:
            return entry
    entry = {"with": peer, "latest": None, "preview": "", "offset": -1, **extra}
    view["peers"].append(entry)
    view["peers"].sort(key=lambda known: known["with"])  # one shape for one content, whatever the arrival order
    return entry


def _note(entry: dict, event: StoredEvent) -> None:
    """Count the event as the entry's last applied; it becomes the latest unless an earlier-offset one is later in time."""
    entry["offset"] = event.source.offset
    sent_at = event.message.sent_at
    if entry["latest"] is None or sent_at >= as_utc(entry["latest"]):
        entry["latest"], entry["preview"] = sent_at, preview_of(event.message.text)


def preview_of(text: str) -> str:
    """The start of a message, as a conversation list shows it."""
    return text if len(text) <= PREVIEW_CHARS else text[:PREVIEW_CHARS - 1] + "…"


def summaries(inbox: dict | None, outboxes: Iterable[dict], markers: dict[str, dict]) -> list[dict]:
    """The client's conversations, latest first: `with`, `latest`, `preview` and `unread` (from its read `markers`)."""
    conversations: dict[str, dict] = {}
    for entry in (inbox or {}).get("peers", []):
        conversations[entry["with"]] = {"with": entry["with"], "latest": as_utc(entry["latest"]),
                                        "preview": entry["preview"], "unread": _unread(entry, markers.get(entry["with"]))}
    for outbox in outboxes:
        for entry in outbox["peers"]:
            known = conversations.setdefault(entry["with"], {"with": entry["with"], "latest": None, "preview": "",
                                                             "unread": 0})
            if known["latest"] is None or as_utc(entry["latest"]) > known["latest"]:
                known["latest"], known["preview"] = as_utc(entry["latest"]), entry["preview"]
    ordered = sorted(conversations.values(), key=lambda entry: (entry["latest"], entry["with"]), reverse=True)
    return [{**entry, "latest": to_iso(entry["latest"])} for entry in ordered]


def _unread(entry: dict, marker: dict | None) -> int:
    """How many of the peer's messages were sent after what the client read."""
    if marker is None:
        return entry["count"]
    newer = _sent_after(entry, as_utc(marker["upTo"]))
    return newer if newer is not None else max(len(entry["recent"]), entry["count"] - marker.get("readCount", 0))


def _sent_after(entry: dict, moment: datetime) -> int | None:
    """How many of the entry's messages were sent after `moment`; None when all it remembers were."""
    newer = sum(1 for sent_at in entry["recent"] if as_utc(sent_at) > moment)
    reaches_back = newer < len(entry["recent"]) or entry["count"] == len(entry["recent"])
    return newer if reaches_back else None


def read_count(inbox: dict | None, peer: str, up_to: datetime) -> int | None:
    """How many of the peer's messages a client has read when it read up to `up_to`; None when the view cannot say."""
    for entry in (inbox or {}).get("peers", []):
        if entry["with"] == peer:
            newer = _sent_after(entry, up_to)
            return None if newer is None else entry["count"] - newer
    return None


def positions(inbox: dict | None, outboxes: Iterable[dict]) -> dict[str, int]:
    """For each recipient among the client's messages, the highest source offset the views have applied."""
    offsets = {}
    if inbox is not None and inbox["offset"] >= 0:
        offsets[inbox["_id"][len("in/"):]] = inbox["offset"]
    for outbox in outboxes:
        for entry in outbox["peers"]:
            offsets[entry["with"]] = max(entry["offset"], offsets.get(entry["with"], -1))
    return offsets


def missed_messages(client: str, inbox: dict | None, outboxes: Iterable[dict], offsets: dict[str, int],
                    look_up: Callable[[str], dict | None], limit: int) -> list[dict] | None:
    """The client's message documents beyond a stream's position, in source offset order; None past `limit`.

    `offsets` holds, per recipient, the last source offset the stream had. Each sequence with
    something beyond it (as its inbox or outbox entry says) is read back from its newest bucket
    until a bucket reaches the position: within a stored-events partition, source offsets grow in
    storing order, since the two topics have as many partitions. A walk that reads more than twice
    `limit` gives up as if that many were missed: the client then reloads its history.
    """
    seen = lambda recipient: offsets.get(recipient, -1)
    walks = []
    if inbox is not None and inbox["offset"] > seen(client):
        walks.append((Sequence(received_sequence(client), inbox.get("count", 0)), seen(client)))
    for outbox in outboxes:
        behind = [seen(entry["with"]) for entry in outbox["peers"] if entry["offset"] > seen(entry["with"])]
        if behind:
            partition = int(outbox["_id"].rsplit("/", 1)[1])
            walks.append((Sequence(sent_sequence(client, partition), outbox.get("count", 0)), min(behind)))
    found: dict[str, dict] = {}
    for sequence, reached in walks:
        read = 0
        for number in range(sequence.buckets - 1, -1, -1):
            messages = (look_up(bucket_id(sequence.id, number)) or {}).get("messages", [])
            read += len(messages)
            found.update((message["_id"], message) for message in messages
                         if message["source"]["offset"] > seen(message["to"]))
            if len(found) > limit or read > 2 * limit + BUCKET:
                return None
            if not messages or min(message["source"]["offset"] for message in messages) <= reached:
                break
    return sorted(found.values(), key=lambda message: (message["source"]["offset"], message["source"]["partition"]))


def rebuilt(events: Iterable[StoredEvent], partitions: int) -> dict[str, dict]:
    """Every view as the stored messages make it, for a stored-events topic of `partitions`.

    Each recipient's messages are applied in source offset order, as they were announced.
    """
    ordered = sorted(events, key=lambda event: (event.source.partition, event.source.offset))
    views = Views(empty_view)
    apply_events(views, [(partition_of(event.message.recipient.encode(), partitions), event) for event in ordered])
    return dict(views)
