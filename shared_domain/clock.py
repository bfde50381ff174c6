"""UTC timestamps at millisecond precision, the precision MongoDB stores."""

from datetime import datetime, timezone


def utc_now() -> datetime:
    """Return the current UTC time truncated to milliseconds."""
    return to_millis(datetime.now(timezone.utc))


def to_millis(moment: datetime) -> datetime:
    """The moment in UTC as a store holds it: truncated to milliseconds."""
    moment = as_utc(moment)
    return moment.replace(microsecond=moment.microsecond - moment.microsecond % 1000)


# The last moment formatted and its text: a batch's messages share one moment, and each is formatted twice (its
# record and its answer). One tuple, swapped whole, so any thread reads a moment with its own text.
_last_formatted: tuple[datetime | None, str] = (None, "")


def to_iso(moment: datetime) -> str:
    """Format a datetime as ISO 8601 UTC with a four-digit year, milliseconds and a trailing Z."""
    global _last_formatted
    last, text = _last_formatted
    if moment is last:
        return text
    utc = moment if moment.tzinfo is timezone.utc else as_utc(moment)
    text = utc.isoformat(timespec="milliseconds")[:-len("+00:00")] + "Z"
    _last_formatted = (moment, text)
    return text


def parse_iso(text: str) -> datetime:
    """Parse an ISO 8601 timestamp into UTC (naive values are taken as UTC).

    Raises ValueError for anything else, including a valid timestamp whose UTC time falls
    outside the years 1-9999 that datetime (and so every store and API here) can represent.
    """
    if not isinstance(text, str):
        raise ValueError(f"expected an ISO 8601 string, got {type(text).__name__}")
    try:
        return as_utc(datetime.fromisoformat(text.strip()))
    except OverflowError:
        raise ValueError("the time is outside the years 1 to 9999 (UTC)") from None


def as_utc(moment: datetime) -> datetime:
    """Return the datetime in UTC, treating a naive one as UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)
