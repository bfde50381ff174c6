"""Why a record failed, and where it sat in Kafka."""

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Failure:
    """Why one record could not be stored, and after how many attempts."""

    error_type: str
    reason: str
    attempts: int
    failed_at: datetime


@dataclass(frozen=True)
class SourcePosition:
    """Where a record sat in Kafka."""

    topic: str
    partition: int
    offset: int
