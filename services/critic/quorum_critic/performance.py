"""Portfolio performance from snapshots: the NAV at the end of each bar time and its rolling Sharpe ratio."""

from __future__ import annotations

import math
from collections import deque
from itertools import pairwise

from quorum_common.phases import bar_time


class NavSeries:
    """The last NAV of each bar time (snapshots of one bar's phases collapse into one point)."""

    def __init__(self, window: int, min_periods: int, periods_per_year: float) -> None:
        self._navs: deque[tuple[int, float]] = deque(maxlen=window + 1)
        self._min_periods = min_periods
        self._annualise = math.sqrt(periods_per_year)

    def add(self, ts_event: int, nav: float) -> None:
        """Record a snapshot's NAV; a later snapshot of the same bar time replaces the earlier one."""
        t = bar_time(ts_event)
        if self._navs and self._navs[-1][0] >= t:
            if self._navs[-1][0] == t:
                self._navs[-1] = (t, nav)
            return
        self._navs.append((t, nav))

    def sharpe(self) -> float | None:
        """Annualised Sharpe ratio (zero risk-free rate) of the window's bar returns; None with too few."""
        navs = [nav for _, nav in self._navs]
        returns = [b / a - 1.0 for a, b in pairwise(navs)]
        if len(returns) < self._min_periods:
            return None
        mean = sum(returns) / len(returns)
        std = math.sqrt(sum((r - mean) ** 2 for r in returns) / (len(returns) - 1))
        return None if std <= 0 else mean / std * self._annualise
