"""Data-quality checks of bar rows, per symbol, in the order the data set holds them.

Rejects (the row is not published; it goes to ``dlq.md.bars`` with the reason):

- ``nan``: a price or the volume is NaN or infinite;
- ``non_positive_price``: open, high, low or close is zero or negative;
- ``negative_volume``: volume below zero;
- ``inconsistent_ohlc``: high < low, or open / close outside [low, high];
- ``out_of_order``: earlier than the symbol's last accepted bar;
- ``duplicate_timestamp``: at the time of the symbol's last accepted bar.

Warnings (the bar is still published; counted in :attr:`QualityChecker.gaps` and logged):

- gap: more than ``max_gap_intervals`` nominal intervals since the symbol's last accepted bar.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass

from quorum_ingest.datasets import RawBar

log = logging.getLogger(__name__)

NAN = "nan"
NON_POSITIVE_PRICE = "non_positive_price"
NEGATIVE_VOLUME = "negative_volume"
INCONSISTENT_OHLC = "inconsistent_ohlc"
OUT_OF_ORDER = "out_of_order"
DUPLICATE_TIMESTAMP = "duplicate_timestamp"
REJECT_REASONS = (NAN, NON_POSITIVE_PRICE, NEGATIVE_VOLUME, INCONSISTENT_OHLC, OUT_OF_ORDER, DUPLICATE_TIMESTAMP)

_NS_PER_S = 1_000_000_000
INTERVAL_NS: dict[str, int] = {
    "1m": 60 * _NS_PER_S,
    "5m": 300 * _NS_PER_S,
    "15m": 900 * _NS_PER_S,
    "1h": 3600 * _NS_PER_S,
    "4h": 4 * 3600 * _NS_PER_S,
    "1d": 86_400 * _NS_PER_S,
    "1w": 7 * 86_400 * _NS_PER_S,
    "1M": 31 * 86_400 * _NS_PER_S,
}
"""Nominal length of each bar interval (a month counts as 31 days)."""


def interval_ns(interval: str) -> int:
    """The nominal length of ``interval`` in ns; ``ValueError`` names the known intervals."""
    try:
        return INTERVAL_NS[interval]
    except KeyError:
        raise ValueError(f"unknown interval {interval!r}; known: {', '.join(INTERVAL_NS)}") from None


@dataclass(frozen=True)
class Verdict:
    """The outcome of checking one row: ``reason`` is None for an accepted row."""

    reason: str | None
    detail: str = ""
    gap: bool = False


def row_problem(bar: RawBar) -> tuple[str, str] | None:
    """``(reason, detail)`` when the row's own values are bad, else None (no state needed)."""
    low, high = bar.low, bar.high
    if 0 < low <= bar.open <= high < math.inf and low <= bar.close <= high and 0 <= bar.volume < math.inf:
        return None  # fast path of a good row: any NaN fails a comparison and takes the slow path below
    prices = {"open": bar.open, "high": bar.high, "low": bar.low, "close": bar.close}
    bad = [name for name, v in {**prices, "volume": bar.volume}.items() if not math.isfinite(v)]
    if bad:
        return NAN, f"not a finite number: {', '.join(bad)}"
    bad = [name for name, v in prices.items() if v <= 0]
    if bad:
        return NON_POSITIVE_PRICE, f"non-positive: {', '.join(f'{n}={prices[n]}' for n in bad)}"
    if bar.volume < 0:
        return NEGATIVE_VOLUME, f"volume={bar.volume}"
    if bar.high < bar.low:
        return INCONSISTENT_OHLC, f"high {bar.high} < low {bar.low}"
    outside = [n for n in ("open", "close") if not bar.low <= prices[n] <= bar.high]
    if outside:
        return INCONSISTENT_OHLC, f"{', '.join(outside)} outside [low {bar.low}, high {bar.high}]"
    return None


class QualityChecker:
    """Checks the rows of many symbols, each in its own order; keeps counts of rejects and gaps."""

    def __init__(self, max_gap_intervals: float = 5.0) -> None:
        self.max_gap_intervals = max_gap_intervals
        self._last_ts: dict[str, int] = {}
        self.rejects: Counter[str] = Counter()
        """Rejected rows by reason."""
        self.gaps: Counter[str] = Counter()
        """Gap warnings by symbol."""

    def check(self, symbol: str, interval: str, bar: RawBar) -> Verdict:
        """Check one row of ``symbol``; an accepted row becomes the symbol's last bar."""
        problem = row_problem(bar)
        if problem is None:
            problem = self._order_problem(symbol, bar.ts_ns)
        if problem is not None:
            self.rejects[problem[0]] += 1
            return Verdict(*problem)
        last = self._last_ts.get(symbol)
        self._last_ts[symbol] = bar.ts_ns
        if last is not None and bar.ts_ns - last > self.max_gap_intervals * interval_ns(interval):
            self.gaps[symbol] += 1
            detail = f"{(bar.ts_ns - last) / interval_ns(interval):.1f} intervals of {interval} since the last bar"
            log.warning("gap in bars", extra={"symbol": symbol, "detail": detail})
            return Verdict(None, detail, gap=True)
        return Verdict(None)

    def _order_problem(self, symbol: str, ts_ns: int) -> tuple[str, str] | None:
        last = self._last_ts.get(symbol)
        if last is None or ts_ns > last:
            return None
        if ts_ns == last:
            return DUPLICATE_TIMESTAMP, f"a bar at {ts_ns} was already accepted"
        return OUT_OF_ORDER, f"{ts_ns} is before the last accepted bar at {last}"
