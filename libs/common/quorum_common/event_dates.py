"""Calendar dates of event times (ns since the epoch, UTC) and back, exact (no float rounding)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def utc_date(ts_ns: int) -> date:
    """The UTC calendar date of a time in ns since the epoch."""
    return (_EPOCH + timedelta(microseconds=ts_ns // 1000)).date()


def day_ns(day: date | str, end_of_day: bool = False) -> int:
    """ns since the epoch of 00:00 UTC of ``day`` (or of its last microsecond with ``end_of_day``)."""
    day = date.fromisoformat(day) if isinstance(day, str) else day
    moment = datetime.combine(day, time.max if end_of_day else time.min, tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(microseconds=1) * 1000
