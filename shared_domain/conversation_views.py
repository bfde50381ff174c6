"""Conversation views: what a client's conversation list and a stream's start read, instead of its history.

Two kinds of document, each written by the one projector that owns a partition of the
stored-events topic (keyed by recipient):
- a client's inbox: per sender, the latest message, a preview, how many arrived and when the last
  RECENT were sent; and the highest source offset among the client's messages (all in one
  partition of the message topic);
- a client's outbox of one stored-events partition: per recipient in that partition, the latest
  message, a preview and the highest source offset;
Pages of messages are in the same collection, in the streams of `message_pages`.
Each inbox and outbox also logs what it applied, in offset order, so that a stream's resume finds
what it missed by key: its latest arrivals ({offset, _id of the message}; in an outbox, its
recipient `to` too: FerretDB v1 refuses arrays in arrays), every ARRIVALS of which move into a
document of their own, numbered from 0.
A stored event changes a document only when its source offset is beyond what the document (or,
in an outbox, the recipient's entry) has applied: a recipient's messages are stored and announced
in offset order, so a batch announced or read again after a crash or a rebalance changes nothing.
"""

from collections.abc import Callable, Iterable
from datetime import datetime

from .clock import as_utc, to_iso
from .message_pages import PageWriter, place
from .partitioning import partition_of
from .stored_events import StoredEvent

VIEWS_COLLECTION = "conversation_views"
PREVIEW_CHARS = 80
# An inbox entry keeps the sending times of the sender's last messages, so that unread counts are exact
# for a client that read up to any of them.
RECENT = 50
ARRIVALS = 64


class NotLogged(Exception):
    """What a question about a view's arrivals needs reaches back further than its log, or than the question may read."""


def inbox_id(client: str) -> str:
    """The _id of the client's inbox ('/' is in no client id)."""
    return f"in/{client}"


def outbox_id(client: str, partition: int) -> str:
    """The _id of the client's outbox for the recipients of one stored-events partition."""
    return f"out/{client}/{partition}"


def read_marker_id(client: str, partner: str) -> str:
    """The _id of what the client has read of its conversation with `partner`."""
    return f"{client}\x00{partner}"


def arrivals_id(view_id: str, number: int) -> str:
    """The _id of a view's `number`th full set of arrivals."""
    return f"a/{view_id}/{number}"


def applied_id(partition: int) -> str:
    """The _id of how far the views have read a partition of the stored-events topic."""
    return f"applied/{partition}"


def empty_view(view_id: str) -> dict:
    """A view with nothing applied yet (its log of arrivals complete from the start)."""
    log = {"arrived": [], "sets": 0, "loggedAfter": -1}
    if view_id.startswith("out/"):
        return {"_id": view_id, "peers": [], **log}
    return {"_id": view_id, "offset": -1, "peers": [], **log}


def view_ids(events: Iterable[tuple[int, StoredEvent]]) -> set[str]:
    """The views that (stored-events partition, event) pairs concern."""
    ids = set()
    for partition, event in events:
        message = event.message
        ids |= {inbox_id(message.recipient), outbox_id(message.sender, partition)}
    return ids


def apply_events(views: dict[str, dict], events: Iterable[tuple[int, StoredEvent]]) -> list[str]:
    """Apply each (stored-events partition, event) to the views it concerns, all in `views` (the full sets of arrivals
    they make are added); return the ids changed, in the order to write them: a view never names a set not yet
    written."""
    changed = set()
    for partition, event in events:
        message, offset = event.message, event.source.offset
        key = message.key
        inbox = views[inbox_id(message.recipient)]
        if offset > inbox["offset"]:
            _log(views, changed, inbox, {"offset": offset, "_id": key})
            inbox["offset"] = offset
            entry = _entry(inbox, message.sender, count=0, recent=[])
            entry["count"] += 1
            entry["recent"] = [*entry["recent"], message.sent_at][-RECENT:]
            _note(entry, event)
            changed.add(inbox["_id"])
        outbox = views[outbox_id(message.sender, partition)]
        entry = _entry(outbox, message.recipient)
        if offset > entry["offset"]:
            _log(views, changed, outbox, {"offset": offset, "to": message.recipient, "_id": key})
            _note(entry, event)
            changed.add(outbox["_id"])
    return sorted(changed, key=lambda view_id: (not view_id.startswith("a/"), view_id))


def _log(views: dict[str, dict], changed: set[str], view: dict, arrival: dict) -> None:
    """Log an arrival in the view; when its latest are ARRIVALS, they move first into a document of their own."""
    if "arrived" not in view:  # a view written before views logged: its log starts after what it applied
        view.update(arrived=[], sets=0, loggedAfter=_applied(view))
    latest = view["arrived"]
    if len(latest) == ARRIVALS:
        full = arrivals_id(view["_id"], view["sets"])
        views[full] = {"_id": full, "arrived": latest}
        changed.add(full)
        view["sets"], latest = view["sets"] + 1, []
    view["arrived"] = [*latest, arrival]


def _applied(view: dict) -> int:
    """The highest source offset a view has applied."""
    return view["offset"] if "offset" in view else max((entry["offset"] for entry in view["peers"]), default=-1)


def arrivals_after(view: dict, read: Callable[[str], dict | None], floor: int, budget: int) -> list[dict]:
    """The view's arrivals above `floor`, oldest first, read back through as many full sets as they reach.

    NotLogged when they reach back further than the view's log, or number more than `budget`.
    """
    if _applied(view) <= floor:
        return []
    if "arrived" not in view or view["loggedAfter"] > floor:
        raise NotLogged(f"{view['_id']} logs its arrivals after offset {view.get('loggedAfter', _applied(view))}")
    found, arrivals, number = [], view["arrived"], view["sets"]
    while True:
        for arrival in reversed(arrivals):
            if arrival["offset"] <= floor:
                return found[::-1]
            found.append(arrival)
            if len(found) > budget:
                raise NotLogged(f"more than {budget} arrivals after offset {floor} in {view['_id']}")
        if number == 0:
            return found[::-1]
        number -= 1
        full = read(arrivals_id(view["_id"], number))
        if full is None:
            raise NotLogged(f"{arrivals_id(view['_id'], number)} is missing")
        arrivals = full["arrived"]


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


def rebuilt(events: Iterable[StoredEvent], partitions: int) -> dict[str, dict]:
    """Every view and page document as the stored messages make them, for a stored-events topic of `partitions`.

    Each recipient's messages are applied in source offset order, as they were announced.
    """
    ordered = sorted(events, key=lambda event: (event.source.partition, event.source.offset))
    keyed = [(partition_of(event.message.recipient.encode(), partitions), event) for event in ordered]
    views = {view_id: empty_view(view_id) for view_id in view_ids(keyed)}
    apply_events(views, keyed)
    pages = PageWriter(lambda doc_id: None)
    place(pages, keyed)
    return {**views, **{doc["_id"]: doc for doc in pages.writes()}}
