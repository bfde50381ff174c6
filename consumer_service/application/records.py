"""Plain records passed between the Kafka adapters and the use cases."""

from dataclasses import dataclass, field

from shared_domain.envelope import TRACE_ID_HEADER, usable_trace_id
from shared_domain.failed_messages import REPLAY_OF_HEADER, failure_source
from shared_domain.failures import Failure, SourcePosition

Headers = list[tuple[str, bytes | None]]


@dataclass(frozen=True)
class IncomingRecord:
    """One record read from Kafka."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers = field(default_factory=list)
    # What the Kafka client could not read of the record (e.g. header names that are not UTF-8).
    defect: str | None = None

    @property
    def position(self) -> SourcePosition:
        """Where this record sits in Kafka."""
        return SourcePosition(self.topic, self.partition, self.offset)

    @property
    def replays(self) -> SourcePosition | None:
        """Where the record an operator's replay republished sat (its replay-of header), or None."""
        value = next((value for name, value in self.headers if name == REPLAY_OF_HEADER and value is not None), None)
        return None if value is None else failure_source(value.decode("utf-8", errors="replace"))

    @property
    def trace_id(self) -> str | None:
        """The trace id the producer gave the record (its X-Request-Id), for log lines about it."""
        value = next((value for name, value in self.headers if name == TRACE_ID_HEADER and value is not None), None)
        return usable_trace_id(value)


@dataclass(frozen=True)
class DeadLetter:
    """A record to write to the dead-letter topic, with why it failed."""

    record: IncomingRecord
    failure: Failure
    consumer_client: str


@dataclass(frozen=True)
class OutgoingRecord:
    """A record to produce: key, value and headers."""

    key: bytes | None
    value: bytes | None
    headers: Headers
