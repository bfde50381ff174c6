"""A steady stream of sends in the background, remembering what each request was answered."""

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

MESSAGES = int(os.environ.get("FAULT_MESSAGES", "2000"))
RATE = float(os.environ.get("FAULT_RATE", "250"))


@dataclass
class Outcome:
    """How one send was answered: HTTP status (0 when no answer), how long it took, and when (time.monotonic())."""

    status: int
    seconds: float
    index: int
    at: float


@dataclass
class Load:
    """Sends `total` messages with client-chosen ids at `rate` per second from a pool of senders."""

    api: object
    prefix: str
    total: int = MESSAGES
    rate: float = RATE
    recipient: str = "clientB"
    senders: int = 16
    outcomes: dict[str, Outcome] = field(default_factory=dict)

    def start(self) -> "Load":
        """Start sending in the background."""
        self._thread = threading.Thread(target=self._run, name=f"load-{self.prefix}", daemon=True)
        self._thread.start()
        return self

    def wait(self, timeout: float = 300) -> None:
        """Wait until every send was answered (or failed)."""
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"load {self.prefix} did not finish within {timeout}s"

    @property
    def done(self) -> int:
        """How many sends were answered so far."""
        return len(self.outcomes)

    def ids_with(self, status: int) -> set[str]:
        """The message ids whose send was answered with `status`."""
        return {message_id for message_id, outcome in list(self.outcomes.items()) if outcome.status == status}

    def _run(self) -> None:
        """Dispatch sends on schedule."""
        began = time.monotonic()
        with ThreadPoolExecutor(self.senders) as pool:
            for n in range(self.total):
                delay = began + n / self.rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                pool.submit(self._send, f"{self.prefix}-{n:05d}", n)

    def _send(self, message_id: str, n: int) -> None:
        """Send one message and record the answer."""
        began = time.monotonic()
        try:
            status = self.api.send("clientA", self.recipient, f"load message {n}", messageId=message_id).status
        except OSError:
            status = 0
        ended = time.monotonic()
        self.outcomes[message_id] = Outcome(status, ended - began, n, ended)
