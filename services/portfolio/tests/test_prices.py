"""Close history and trailing returns: alignment, no look-ahead, late bars."""

from __future__ import annotations

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
