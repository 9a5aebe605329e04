"""Clock ticks of the event-time phases (:mod:`quorum_common.phases`) for a stream of bar times.

For every bar time ``t``, right after its bars: one tick per phase of ``PHASE_OFFSETS_NS``
(``BAR_CLOSE`` at ``t + 1`` … ``ROUTE`` at ``t + 5``). A calendar period (day, ISO week, month,
quarter, year) is known to have ended only when the first bar of the next period arrives; its end
tick is then stamped ``t_last + CALENDAR_OFFSET_NS``, where ``t_last`` is the period's last bar time,
and is published before the new period's bars (shortest period first). So the source reads no row
before it is due, the stream stays in non-decreasing event time, and a replay gives the same ticks
as :func:`quorum_common.phases.phase_ticks` would for each bar time. The last period of a stream
gets no end tick (nothing says it is over). Live mode publishes the per-bar phases at once, without
waiting for the next candle.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import date
from typing import Any

from quorum_common.engine import SourceItem
from quorum_common.event_dates import utc_date
from quorum_common.phases import CALENDAR_KINDS, CLOCK_TOPIC, PHASE_OFFSETS_NS, clock_tick

from quorum_ingest.quality import interval_ns
from quorum_ingest.records import BARS_TOPIC

_PERIOD_KEYS: dict[str, Callable[[date], tuple[int, ...]]] = {
    "DAY_END": lambda d: (d.toordinal(),),
    "WEEK_END": lambda d: tuple(d.isocalendar())[:2],
    "MONTH_END": lambda d: (d.year, d.month),
    "QUARTER_END": lambda d: (d.year, (d.month - 1) // 3),
    "YEAR_END": lambda d: (d.year,),
}
PERIODS = tuple((kind, _PERIOD_KEYS[kind]) for kind in CALENDAR_KINDS)
"""Calendar periods in the order of ``CALENDAR_KINDS`` (shortest first), with the key that changes when one ends."""


def ended_periods(last: date, new: date) -> list[str]:
    """Kinds of the periods that ``last`` belongs to and ``new`` does not, shortest first."""
    return [kind for kind, key in PERIODS if key(last) != key(new)]


class ClockTicker:
    """Builds the ``sys.clock`` ticks of one calendar; ``sequence`` counts every tick it built."""

    def __init__(self, calendar: str = "XNYS") -> None:
        self.calendar = calendar
        self.sequence = 0
        self._last_bar_ts: int | None = None

    def _tick(self, kind: str, bar_ts: int, interval: str | None) -> dict[str, Any]:
        self.sequence += 1
        return clock_tick(kind, bar_ts, self.sequence, calendar=self.calendar, interval=interval,
                          session_date=utc_date(bar_ts).isoformat())

    def before_bars(self, bar_ts: int) -> list[dict[str, Any]]:
        """Period-end ticks due before the bars of ``bar_ts`` (periods that ended with the previous bar time)."""
        last = self._last_bar_ts
        if last is None or bar_ts <= last:
            return []
        return [self._tick(kind, last, None) for kind in ended_periods(utc_date(last), utc_date(bar_ts))]

    def after_bars(self, bar_ts: int, interval: str) -> list[dict[str, Any]]:
        """The phase ticks of ``bar_ts`` (``BAR_CLOSE`` … ``ROUTE``), due after every bar of that time."""
        self._last_bar_ts = bar_ts if self._last_bar_ts is None else max(self._last_bar_ts, bar_ts)
        return [self._tick(kind, bar_ts, interval) for kind in PHASE_OFFSETS_NS]


def bars_with_ticks(ticker: ClockTicker, bars: Iterable[tuple[int, str, str, dict[str, Any]]]) -> Iterator[SourceItem]:
    """Interleave ``(ts, symbol, interval, BarClosed)`` (sorted by ts, symbol) with the ticks of ``ticker``.

    Per bar time: period-end ticks of the previous bar time, the bars, then the phase ticks stamped
    with the shortest interval among the bars. Lazy: one bar time at a time.
    """
    bar_ts: int | None = None
    intervals: set[str] = set()
    for ts, symbol, interval, record in bars:
        if ts != bar_ts:
            if bar_ts is not None:
                yield from _ticks(ticker, ticker.after_bars(bar_ts, min(intervals, key=interval_ns)))
            yield from _ticks(ticker, ticker.before_bars(ts))
            bar_ts, intervals = ts, set()
        intervals.add(interval)
        yield BARS_TOPIC, symbol, record
    if bar_ts is not None:
        yield from _ticks(ticker, ticker.after_bars(bar_ts, min(intervals, key=interval_ns)))


def _ticks(ticker: ClockTicker, ticks: list[dict[str, Any]]) -> Iterator[SourceItem]:
    for tick in ticks:
        yield CLOCK_TOPIC, ticker.calendar, tick
