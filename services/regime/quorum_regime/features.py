"""The regime model's features, built bar by bar from the market proxy and the volatility index.

One feature row per market bar at ``t``: the log return ``log(close_t / close_{t-1})``, the
annualised realised volatility (sample standard deviation of the last ``vol_window`` log returns
times ``sqrt(periods_per_year)``) and, when a VIX feed is present, the VIX close at ``t``
(forward-filled from the last VIX bar before ``t`` when the VIX has no bar at ``t``).

Market and VIX bars of the same ``t`` may arrive in either order (and, over Kafka, the two symbols
may sit on different partitions), so a market bar waits until the VIX stream has reached its time.
Once a VIX bar has been seen, a market bar at ``t`` is processed when a VIX bar with
``ts_event >= t`` has arrived, or when more than ``max_pending`` market bars wait (a VIX feed that
stopped). Every value of a row comes from bars with ``ts_event <= t``: no look-ahead.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np


class StaleBarError(ValueError):
    """A bar is not later than the previous bar of its symbol (duplicate or out of order)."""


@dataclass(frozen=True)
class FeatureRow:
    """Features of one market bar."""

    ts: int
    bar_event_id: str
    log_return: float
    realised_vol: float
    vix: float | None


@dataclass(frozen=True)
class _MarketBar:
    ts: int
    close: float
    event_id: str


class FeatureBuilder:
    """Turns market and VIX closes into :class:`FeatureRow` objects, in market-bar order."""

    def __init__(self, vol_window: int, periods_per_year: float, max_pending: int) -> None:
        self._vol_window = vol_window
        self._annualise = math.sqrt(periods_per_year)
        self._max_pending = max_pending
        self._pending: deque[_MarketBar] = deque()
        self._last_market_ts: int | None = None
        self._prev_close: float | None = None
        self._returns: deque[float] = deque(maxlen=vol_window)
        self._vix_ts: list[int] = []
        self._vix_close: list[float] = []
        self._last_vix_ts: int | None = None
        self._vix_value: float | None = None

    def add_market(self, ts: int, close: float, event_id: str) -> list[FeatureRow]:
        """Queue a market bar; return the rows that became complete."""
        if self._last_market_ts is not None and ts <= self._last_market_ts:
            raise StaleBarError(f"market bar at {ts} is not after the previous one at {self._last_market_ts}")
        self._last_market_ts = ts
        self._pending.append(_MarketBar(ts, close, event_id))
        return self._drain()

    def add_vix(self, ts: int, close: float) -> list[FeatureRow]:
        """Record a VIX close; return the market rows that it completes."""
        if self._last_vix_ts is not None and ts <= self._last_vix_ts:
            raise StaleBarError(f"VIX bar at {ts} is not after the previous one at {self._last_vix_ts}")
        self._last_vix_ts = ts
        self._vix_ts.append(ts)
        self._vix_close.append(close)
        return self._drain()

    def _ready(self, ts: int) -> bool:
        if self._last_vix_ts is None or self._last_vix_ts >= ts:
            return True
        return len(self._pending) > self._max_pending

    def _drain(self) -> list[FeatureRow]:
        rows: list[FeatureRow] = []
        while self._pending and self._ready(self._pending[0].ts):
            row = self._process(self._pending.popleft())
            if row is not None:
                rows.append(row)
        return rows

    def _vix_at(self, ts: int) -> float | None:
        """The last VIX close with ``ts_event <= ts``; consumed VIX bars are forgotten."""
        upto = bisect.bisect_right(self._vix_ts, ts)
        if upto:
            self._vix_value = self._vix_close[upto - 1]
            del self._vix_ts[:upto], self._vix_close[:upto]
        return self._vix_value

    def _process(self, bar: _MarketBar) -> FeatureRow | None:
        vix = self._vix_at(bar.ts)
        prev, self._prev_close = self._prev_close, bar.close
        if prev is None:
            return None
        self._returns.append(math.log(bar.close / prev))
        if len(self._returns) < self._vol_window:
            return None
        n = len(self._returns)
        mean = sum(self._returns) / n
        var = sum((r - mean) ** 2 for r in self._returns) / (n - 1)
        return FeatureRow(bar.ts, bar.event_id, self._returns[-1], math.sqrt(var) * self._annualise, vix)


def feature_matrix(bars: Iterable[dict[str, Any]], builder: FeatureBuilder, market: str = "SPX",
                   vix: str = "VIX") -> np.ndarray:
    """The feature rows of ``bars`` (``md.bars`` records of ``market`` and ``vix`` in replay order) as an ``(n, 3)``
    array of return, realised volatility and VIX (NaN before the first VIX bar): what the engine fits on (tests and
    benchmarks)."""
    rows = []
    for bar in bars:
        if bar["symbol"] == market:
            new = builder.add_market(bar["ts_event"], bar["close"], bar["event_id"])
        elif bar["symbol"] == vix:
            new = builder.add_vix(bar["ts_event"], bar["close"])
        else:
            continue
        rows += [(r.log_return, r.realised_vol, math.nan if r.vix is None else r.vix) for r in new]
    return np.array(rows).reshape(-1, 3)
