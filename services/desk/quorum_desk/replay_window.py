"""Time windows of a topic replay: parsing the command line's times and the warm-up policy.

Two clocks, never mixed:

- **event time** (``--from`` / ``--to``): the records' own ``ts_event``; this is what the desk decides on
  and what the comparison window is made of;
- **wall-clock time** (``--wall-from`` / ``--wall-to``): the Kafka message timestamps, i.e. when the
  records were written during the recording. A wall-clock window selects the recorded *input* records
  written in it (``offsets_for_times``) and is converted to the event-time span of those records.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from quorum_desk.metrics import NS_PER_DAY

_FRACTION = re.compile(r"(?<=\d\d:\d\d:\d\d)\.(\d{1,9})")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class ReplayInputError(ValueError):
    """A replay argument is invalid; the message names it."""


def _to_ns(moment: datetime) -> int:
    moment = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(microseconds=1) * 1000


def parse_time(text: str, field: str, end: bool = False) -> int:
    """ns since the epoch of ``text``: an integer (ns), an ISO date or an ISO date-time (UTC if naive, up
    to nine fraction digits, as :func:`format_ns` writes them).

    A bare date means its first nanosecond, or with ``end`` its last one (so ``--to 2006-11-30``
    includes that whole day).
    """
    text = str(text).strip()
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            start = _to_ns(datetime(day.year, day.month, day.day, tzinfo=UTC))
            return start + NS_PER_DAY - 1 if end else start
        fraction = _FRACTION.search(text)
        if fraction is None:
            return _to_ns(datetime.fromisoformat(text.replace("Z", "+00:00")))
        whole = text[: fraction.start()] + text[fraction.end():]
        return _to_ns(datetime.fromisoformat(whole.replace("Z", "+00:00"))) + int(fraction.group(1).ljust(9, "0"))
    except ValueError:
        raise ReplayInputError(f"{field}: {text!r} is not a time (ns integer, YYYY-MM-DD or ISO date-time)") from None


def format_ns(ts: int | None) -> str:
    """ISO form of a time in ns since the epoch (UTC), with all nine fraction digits when not whole seconds
    (so the phase ticks ``t + 1`` … ``t + 6`` ns stay apart)."""
    if ts is None:
        return "-"
    seconds, fraction = divmod(ts, 10**9)
    base = (_EPOCH + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{fraction:09d}Z" if fraction else f"{base}Z"


def parse_warmup(text: str | None) -> int | None:
    """Warm-up in ns: ``all`` (default, from the first input) → ``None``; ``none`` → 0; ``N``/``Nd`` → N days."""
    if text is None or text.strip().lower() == "all":
        return None
    value = text.strip().lower()
    if value == "none":
        return 0
    try:
        days = float(value.removesuffix("d"))
    except ValueError:
        raise ReplayInputError(f"--warmup: {text!r} is not 'all', 'none' or a number of days") from None
    if days < 0:
        raise ReplayInputError(f"--warmup: {text!r} must not be negative")
    return int(days * NS_PER_DAY)


@dataclass(frozen=True)
class EventWindow:
    """The event-time window compared, and from when the inputs are re-driven."""

    start: int
    """First event time compared (ns, inclusive)."""
    end: int
    """Last event time compared and last input re-driven (ns, inclusive)."""
    warmup_ns: int | None = None
    """Inputs re-driven before ``start``: ``None`` all recorded history, else this many ns."""

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ReplayInputError(f"window: end {format_ns(self.end)} is before start {format_ns(self.start)}")

    @property
    def replay_from(self) -> int | None:
        """First input event time re-driven (``None``: from the first recorded input)."""
        return None if self.warmup_ns is None else self.start - self.warmup_ns

    def contains(self, ts: int) -> bool:
        """Whether event time ``ts`` is compared."""
        return self.start <= ts <= self.end

    def feeds(self, ts: int) -> bool:
        """Whether an input of event time ``ts`` is re-driven."""
        first = self.replay_from
        return (first is None or ts >= first) and ts <= self.end

    def describe(self) -> dict[str, object]:
        """JSON form for reports and manifests."""
        return {"start": self.start, "end": self.end, "start_iso": format_ns(self.start),
                "end_iso": format_ns(self.end), "replay_from": self.replay_from,
                "warmup": "all" if self.warmup_ns is None else self.warmup_ns / NS_PER_DAY}
