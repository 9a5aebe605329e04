"""Close history and trailing returns: alignment, no look-ahead, late bars."""

from __future__ import annotations

from collections import deque

import numpy as np
import pandas as pd
import pytest
from quorum_portfolio.prices import PriceHistory


def test_returns_use_only_bars_up_to_the_cutoff_and_carry_prices_forward() -> None:
    h = PriceHistory(maxlen=100)
    for t, (a, b) in enumerate([(100, 10), (110, 11), (121, None), (133.1, 12.1), (999, 999)]):
        h.add("A", t, a)
        if b is not None:
            h.add("B", t, b)
    r = h.returns(["A", "B", "C"], until_ts=3, bars=10, min_bars=2)
    assert list(r.columns) == ["A", "B"]  # C has no history
    assert r["A"].tolist() == pytest.approx([0.1, 0.1, 0.1])
    assert r["B"].tolist() == pytest.approx([0.1, 0.0, 0.1])  # t=2 carried forward
    assert h.returns(["A"], until_ts=3, bars=2, min_bars=1)["A"].size == 2


def test_late_bars_are_refused_and_repeated_bar_times_replace() -> None:
    h = PriceHistory(maxlen=10)
    assert h.add("A", 5, 100.0)
    assert not h.add("A", 4, 1.0)
    assert h.add("A", 5, 101.0)
    assert h.add("A", 6, 202.0)
    assert h.returns(["A"], 6, 10, 1)["A"].tolist() == pytest.approx([1.0])


def test_symbols_short_of_history_are_left_out() -> None:
    h = PriceHistory(maxlen=10)
    for t in range(5):
        h.add("A", t, 100.0 + t)
    assert h.returns(["A"], 10, 10, min_bars=5).empty
    assert not h.returns(["A"], 10, 10, min_bars=4).empty


class _ReferenceHistory:
    """The straightforward pandas implementation that ``PriceHistory`` replaced (the reference it must match)."""

    def __init__(self, maxlen: int) -> None:
        self._closes: dict[str, deque[tuple[int, float]]] = {}
        self.maxlen = maxlen

    def add(self, symbol: str, bar_ts: int, close: float) -> bool:
        closes = self._closes.setdefault(symbol, deque(maxlen=self.maxlen))
        if closes and bar_ts < closes[-1][0]:
            return False
        if closes and bar_ts == closes[-1][0]:
            closes.pop()
        closes.append((bar_ts, close))
        return True

    def returns(self, symbols: list[str], until_ts: int, bars: int, min_bars: int) -> pd.DataFrame:
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


def _assert_identical(new: pd.DataFrame, ref: pd.DataFrame) -> None:
    """Same frame bit for bit, but for one thing: pandas 3 turns evenly spaced dict keys into a RangeIndex, so
    the reference's index is sometimes a RangeIndex holding the same int64 values (``equiv``)."""
    pd.testing.assert_frame_equal(new, ref, check_exact=True, check_index_type="equiv", check_column_type=True)
    assert new.index.dtype == ref.index.dtype and new.columns.dtype == ref.columns.dtype
    assert np.array_equal(new.index.to_numpy(), ref.index.to_numpy())
    assert list(new.dtypes) == list(ref.dtypes)
    assert new.to_numpy().tobytes() == ref.to_numpy().tobytes()  # bit for bit (signed zeros included)
    if new.size:
        assert new.to_numpy().flags.c_contiguous == ref.to_numpy().flags.c_contiguous  # same memory layout


@pytest.mark.parametrize("seed", range(12))
def test_returns_match_the_reference_implementation_on_random_histories(seed: int) -> None:
    """Different calendars (weekdays only, every day, random gaps), repeated and late bar times, NaN closes,
    deques that roll over, cut-offs inside and beyond the history, short symbols, unknown and repeated names."""
    rng = np.random.default_rng(seed)
    maxlen = int(rng.integers(5, 120))
    new, ref = PriceHistory(maxlen), _ReferenceHistory(maxlen)
    day = 86_400 * 10**9
    calendars = {
        "WKDAY": lambda d: d % 7 < 5, "DAILY": lambda d: True, "GAPPY": lambda d: rng.random() < 0.6,
        "LATE": lambda d: d > 60 and d % 7 < 5, "RARE": lambda d: rng.random() < 0.1,
    }
    prices = dict.fromkeys(calendars, 100.0)
    for d in range(int(rng.integers(20, 200))):
        for s, trades in calendars.items():
            if not trades(d):
                continue
            prices[s] *= 1.0 + rng.normal(0.0, 0.02)
            ts = d * day + int(rng.integers(0, 3))
            close = float("nan") if rng.random() < 0.02 else prices[s]
            if rng.random() < 0.05:  # a late bar, older than the last one
                ts -= 2 * day
            assert new.add(s, ts, close) == ref.add(s, ts, close)
            if rng.random() < 0.05:  # the same bar time again, corrected
                assert new.add(s, ts, close * 1.01) == ref.add(s, ts, close * 1.01)
        if rng.random() < 0.3:
            universe = list(rng.permutation([*calendars, "UNKNOWN"]))
            symbols = universe + universe[:2] if rng.random() < 0.2 else universe
            until_ts = (d - int(rng.integers(0, 5))) * day + int(rng.integers(0, 3))
            bars, min_bars = int(rng.integers(1, 2 * maxlen)), int(rng.integers(0, maxlen))
            _assert_identical(new.returns(symbols, until_ts, bars, min_bars),
                              ref.returns(symbols, until_ts, bars, min_bars))


def test_returns_match_the_reference_on_edge_cases() -> None:
    new, ref = PriceHistory(10), _ReferenceHistory(10)
    for h in (new, ref):
        for t, c in [(1, 10.0), (2, 11.0), (2, 12.0), (1, 99.0), (3, float("nan")), (4, 13.0)]:
            h.add("A", t, c)
        h.add("B", 4, 20.0)
    for args in [(["A", "B"], 4, 10, 1), (["A"], 0, 10, 0), (["A", "B"], 4, 0, 0), (["A"], 4, 1, 1),
                 (["B"], 4, 5, 0), (["A", "B"], 4, 10, 3), ([], 4, 10, 1), (["A"], 2, 10, 5),
                 (["A", "B"], 0, 10, -1), (["B", "A"], 3, 10, -1)]:
        _assert_identical(new.returns(*args), ref.returns(*args))


def test_a_nan_close_just_before_a_short_window_carries_the_close_before_it() -> None:
    """A NaN close just before the window: the close carried into the window is the one before it, as in the
    reference."""
    new, ref = PriceHistory(50), _ReferenceHistory(50)
    for h in (new, ref):
        for t, c in [(1, 10.0), (2, 11.0), (3, float("nan")), (5, 13.0), (6, 14.0)]:
            h.add("A", t, c)
        for t in (4, 5, 6):
            h.add("B", t, 20.0 + t)
    for bars in (1, 2, 3):
        _assert_identical(new.returns(["A", "B"], 6, bars, 0), ref.returns(["A", "B"], 6, bars, 0))
    assert new.returns(["A", "B"], 6, 2, 0)["A"].tolist() == pytest.approx([13.0 / 11.0 - 1.0, 14.0 / 13.0 - 1.0])


def test_bar_intervals_count_the_windows_bar_times_from_one_bar_to_the_next() -> None:
    h = PriceHistory(100)
    for t in range(1, 41):
        h.add("DAILY", t, 100.0 + t)
        if t % 5 == 0:
            h.add("WEEKLY", t, 50.0)
    h.add("ONCE", 20, 10.0)
    window = pd.Index(range(11, 41))
    assert h.bar_intervals(["DAILY", "WEEKLY", "ONCE", "NONE"], window) == {"DAILY": 1.0, "WEEKLY": 5.0}
    assert h.bar_intervals(["DAILY"], pd.Index([40])) == {}
