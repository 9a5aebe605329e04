"""Close-price history per symbol, and the trailing returns the optimiser sees (no look-ahead)."""

from __future__ import annotations

from collections import deque

import numpy as np
import pandas as pd


class PriceHistory:
    """The last ``maxlen`` closes of every symbol, keyed by bar time (integer, strictly increasing per symbol).

    Each symbol keeps two parallel deques (bar times, closes) so that :meth:`returns` can turn them into
    numpy arrays in one C-level pass each instead of building pandas objects per symbol.
    """

    def __init__(self, maxlen: int) -> None:
        self.maxlen = maxlen
        self._series: dict[str, tuple[deque[int], deque[float]]] = {}

    def add(self, symbol: str, bar_ts: int, close: float) -> bool:
        """Record a close and return True; a repeated bar time replaces it; an older one (late, out of order)
        is ignored and False returned."""
        entry = self._series.get(symbol)
        if entry is None:
            entry = self._series[symbol] = (deque(maxlen=self.maxlen), deque(maxlen=self.maxlen))
        times, closes = entry
        if times:
            last = times[-1]
            if bar_ts < last:
                return False
            if bar_ts == last:
                times[-1], closes[-1] = bar_ts, close
                return True
        times.append(bar_ts)
        closes.append(close)
        return True

    def last_ts(self, symbol: str) -> int | None:
        """The bar time of ``symbol``'s latest close, or None before its first."""
        entry = self._series.get(symbol)
        return entry[0][-1] if entry and entry[0] else None

    def bar_intervals(self, symbols: list[str], window: pd.Index) -> dict[str, float]:
        """How often each of ``symbols`` has a bar in ``window`` (sorted bar times, e.g. a returns frame's index):
        the median number of the window's bar times from one of its bars to the next. 1.0 for a symbol with a bar
        at every bar time; about 21 for monthly bars among daily ones. A symbol with under two bars in the window
        is left out (nothing to measure)."""
        stamps = np.asarray(window, dtype=np.int64)
        out: dict[str, float] = {}
        if len(stamps) < 2:
            return out
        for s in symbols:
            entry = self._series.get(s)
            if entry is None:
                continue
            times = np.fromiter(entry[0], dtype=np.int64, count=len(entry[0]))
            own = times[(times >= stamps[0]) & (times <= stamps[-1])]
            if len(own) >= 2:
                out[s] = float(np.median(np.diff(stamps.searchsorted(own))))
        return out

    def returns(self, symbols: list[str], until_ts: int, bars: int, min_bars: int) -> pd.DataFrame:
        """Simple returns of ``symbols`` over the last ``bars`` bar times ``<= until_ts``.

        Closes are aligned on the union of bar times and carried forward (calendars differ: crypto
        trades at weekends); a symbol with fewer than ``min_bars`` returns is left out.

        Same frame as aligning one pandas Series per symbol, ``sort_index().ffill()``, keeping the last
        ``bars + 1`` rows and ``pct_change`` (a NaN close counts as missing and is carried over), computed
        on numpy arrays: only the window's rows are aligned, by binary search in each symbol's times. The
        index is always a plain int64 ``Index`` (that construction gave an equal ``RangeIndex`` when the bar
        times happened to be evenly spaced).
        """
        picked: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for s in symbols:
            entry = self._series.get(s)
            if entry is None or s in picked:
                continue
            times = np.fromiter(entry[0], dtype=np.int64, count=len(entry[0]))
            n = int(times.searchsorted(until_ts, side="right"))  # times are strictly increasing
            if n > min_bars:
                picked[s] = times[:n], np.fromiter(entry[1], dtype=np.float64, count=len(entry[1]))[:n]
        if not picked:
            return pd.DataFrame()
        stamps = np.concatenate([t for t, _ in picked.values()])
        stamps.sort()  # then drop repeats: a few times faster than np.unique for these sizes
        first = np.ones(len(stamps), dtype=bool)
        first[1:] = stamps[1:] != stamps[:-1]
        window = stamps[first][-(bars + 1):]
        closes = np.empty((len(window), len(picked)))  # the carried-forward close of each symbol (column)
        for j, (times, values) in enumerate(picked.values()):
            valid = ~np.isnan(values)
            if not valid.all():
                times, values = times[valid], values[valid]
            at = times.searchsorted(window, side="right") - 1  # the last close at or before each window time
            closes[:, j] = values[at] if len(values) else np.nan
            closes[at < 0, j] = np.nan
        with np.errstate(divide="ignore", invalid="ignore"):
            rets = closes[1:] / closes[:-1] - 1
        missing = np.isnan(rets)
        keep = len(rets) - missing.sum(axis=0) >= min_bars
        rets[missing] = 0.0
        # wrap a fresh C-ordered array (copy=False): the memory layout the pandas construction gave
        return pd.DataFrame(np.ascontiguousarray(rets[:, keep]), index=pd.Index(window[1:]),
                            columns=pd.Index(list(picked))[keep], copy=False)
