"""UTC timestamps at millisecond precision, the precision MongoDB stores."""

from datetime import datetime, timezone


def utc_now() -> datetime:
    """Return the current UTC time truncated to milliseconds."""
    now = datetime.now(timezone.utc)
    return now.replace(microsecond=now.microsecond - now.microsecond % 1000)


def to_iso(moment: datetime) -> str:
    """Format a datetime as ISO 8601 UTC with milliseconds and a trailing Z."""
    moment = as_utc(moment)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_iso(text: str) -> datetime:
    """Parse an ISO 8601 timestamp; naive values are taken as UTC."""
    return as_utc(datetime.fromisoformat(text.strip()))


def as_utc(moment: datetime) -> datetime:
    """Return the datetime in UTC, treating a naive one as UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)
