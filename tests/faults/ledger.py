"""The ledger: every accepted message is stored exactly once or dead-lettered, and nothing else appears."""

import collections
from dataclasses import dataclass

from infra.process import wait_until
from tests.support.ledgers import LEDGERS


@dataclass
class Ledger:
    """What was sent, accepted, stored and dead-lettered in one scenario."""

    scenario: str
    attempted: set
    accepted: set
    stored: collections.Counter
    dead_lettered: set

    @property
    def lost(self) -> set:
        """Accepted, yet neither stored nor dead-lettered."""
        return self.accepted - set(self.stored) - self.dead_lettered

    @property
    def not_stored(self) -> set:
        """Accepted, yet not stored (possibly dead-lettered)."""
        return self.accepted - set(self.stored)

    @property
    def duplicated(self) -> set:
        """Stored more than once."""
        return {message_id for message_id, count in self.stored.items() if count > 1}

    @property
    def unexpected(self) -> set:
        """Stored or dead-lettered without ever being sent."""
        return (set(self.stored) | self.dead_lettered) - self.attempted

    def line(self) -> str:
        """One printable summary line."""
        not_accepted_landed = (set(self.stored) | self.dead_lettered) & (self.attempted - self.accepted)
        return (f"ledger[{self.scenario}]: attempted={len(self.attempted)} accepted={len(self.accepted)} "
                f"stored={len(self.stored)} dead-lettered={len(self.dead_lettered)} "
                f"(not accepted but landed={len(not_accepted_landed)}) lost={len(self.lost)} "
                f"duplicated={len(self.duplicated)} unexpected={len(self.unexpected)}")


def settle(scenario: str, stack, load, timeout: float = 120, all_stored: bool = False) -> Ledger:
    """Wait until every accepted message is stored or dead-lettered (or, with `all_stored`, stored), then check the ledger."""
    accepted = load.ids_with(202)

    def read() -> Ledger:
        stored = collections.Counter(m["messageId"] for m in stack.all_messages(to=load.recipient)
                                     if m["messageId"].startswith(load.prefix))
        failed = {item["messageId"] for item in stack.all_failures(to=load.recipient)
                  if item.get("messageId", "").startswith(load.prefix)}
        return Ledger(scenario, set(load.outcomes), accepted, stored, failed)

    def missing() -> set:
        ledger = read()
        return ledger.not_stored if all_stored else ledger.lost

    try:
        wait_until(lambda: not missing(), timeout=timeout, interval=1.0, what=f"{scenario}: every accepted message to land")
    except TimeoutError as error:
        raise TimeoutError(f"{error}; {_where(stack, missing())}") from None
    finally:
        ledger = read()
        LEDGERS.append(ledger.line())
    assert ledger.lost == set(), f"lost: {sorted(ledger.lost)[:10]}"
    if all_stored:
        assert ledger.not_stored == set(), f"not stored: {sorted(ledger.not_stored)[:10]}"
    assert ledger.duplicated == set(), f"duplicated: {sorted(ledger.duplicated)[:10]}"
    assert ledger.unexpected == set()
    return ledger


def _where(stack, unread: set) -> str:
    """Which part is behind for the messages the API does not list: the record of truth, or the pages read from it."""
    from pymongo import MongoClient

    with MongoClient(stack.env["MONGODB_URI"], serverSelectionTimeoutMS=2000) as client:
        stored = {doc["messageId"] for doc in client[stack.env["MONGODB_DATABASE"]].messages.find(
            {"messageId": {"$in": sorted(unread)}}, {"messageId": 1})}
    return (f"{len(unread)} not listed by GET /messages, {len(stored)} of them in the messages collection "
            f"(first missing: {sorted(unread - stored)[:5]}, first unlisted: {sorted(stored)[:5]})")
