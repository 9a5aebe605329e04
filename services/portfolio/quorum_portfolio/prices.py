"""Close-price history per symbol, and the trailing returns the optimiser sees (no look-ahead)."""

from __future__ import annotations

from collections import deque

import pandas as pd


class PriceHistory:
    """The last ``maxlen`` closes of every symbol, keyed by bar time."""

    def __init__(self, maxlen: int) -> None:
        self.maxlen = maxlen
        self._closes: dict[str, deque[tuple[int, float]]] = {}

    def add(self, symbol: str, bar_ts: int, close: float) -> bool:
        """Record a close and return True; a repeated bar time replaces it; an older one (late, out of order)
        is ignored and False returned."""
        closes = self._closes.setdefault(symbol, deque(maxlen=self.maxlen))
        if closes and bar_ts < closes[-1][0]:
            return False
        if closes and bar_ts == closes[-1][0]:
            closes.pop()
        closes.append((bar_ts, close))
        return True

    def returns(self, symbols: list[str], until_ts: int, bars: int, min_bars: int) -> pd.DataFrame:
        """Simple returns of ``symbols`` over the last ``bars`` bar times ``<= until_ts``.

        Closes are aligned on the union of bar times and carried forward (calendars differ: crypto
        trades at weekends); a symbol with fewer than ``min_bars`` returns is left out.
        """
        series = {}
        for s in symbols:
            points = [(t, c) for t, c in self._closes.get(s, ()) if t <= until_ts]
            if len(points) > min_bars:
                series[s] = pd.Series(dict(points), dtype=float)
        if not series:
            return pd.DataFrame()
        closes = pd.DataFrame(series).sort_index().ffill().iloc[-(bars + 1):]
        rets = closes.pct_change(fill_method=None).iloc[1:]
        keep = [s for s in rets.columns if rets[s].notna().sum() >= min_bars]
        return rets[keep].fillna(0.0)
