"""Each symbol's close at every one of the desk's last sessions: the returns the volatility target is measured on.

The portfolio measures its targets' volatility at every rebalance tick (:mod:`quorum_portfolio.exposure`). Aligning
the price history's bar times for that on every tick cost about a millisecond; this keeps, per symbol, the close it
had at each of the last ``sessions`` ticks (the latest close then, so a symbol without a bar that day carries its
last one: a return of 0), appended once per tick, so the returns are one array operation.
"""

from __future__ import annotations

from collections import deque

import numpy as np


class SessionCloses:
    """The closes of every recorded symbol at the last ``sessions`` rebalance ticks."""

    def __init__(self, sessions: int) -> None:
        self.sessions = sessions
        self._closes: dict[str, deque[float]] = {}

    def record(self, closes: dict[str, float]) -> None:
        """The closes at this tick, one per symbol that has one (a symbol without a close yet is left out)."""
        for symbol, close in closes.items():
            series = self._closes.get(symbol)
            if series is None:
                series = self._closes[symbol] = deque(maxlen=self.sessions)
            series.append(close)

    def returns(self, symbols: list[str]) -> np.ndarray:
        """Simple returns from tick to tick (rows, oldest first) of ``symbols`` (columns, in that order) over the
        recorded ticks; a symbol recorded for fewer ticks than the others has returns of 0 before its first close,
        and one never recorded has returns of 0 throughout (it counts as cash)."""
        rows = max((len(self._closes[s]) for s in symbols if s in self._closes), default=0)
        closes = np.ones((rows, len(symbols)))
        for j, symbol in enumerate(symbols):
            series = self._closes.get(symbol)
            if series:
                column = np.fromiter(series, dtype=np.float64, count=len(series))
                closes[rows - len(column):, j] = column
                closes[:rows - len(column), j] = column[0]
        return closes[1:] / closes[:-1] - 1.0 if rows > 1 else np.empty((0, len(symbols)))
