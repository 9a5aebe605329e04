"""The event clock: the only source of time for decision logic.

It advances with the ``ts_event`` of the records a service handles and never goes back, so a
replay of the same topics sees exactly the same times as the live run did.
"""

from __future__ import annotations


class EventClock:
    """Time as seen through events, in ns since the epoch."""

    def __init__(self, start_ns: int = 0) -> None:
        self._now = start_ns

    def observe(self, ts_event: int) -> int:
        """Advance to ``ts_event`` if it is later than now; return the clock's time."""
        if ts_event > self._now:
            self._now = ts_event
        return self._now

    def now_ns(self) -> int:
        """The latest event time seen."""
        return self._now
