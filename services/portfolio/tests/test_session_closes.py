"""Session closes: the tick-to-tick returns the volatility target is measured on."""

from __future__ import annotations

import numpy as np
import pytest
from quorum_portfolio.session_closes import SessionCloses


def test_returns_from_tick_to_tick_over_the_last_sessions() -> None:
    closes = SessionCloses(3)
    for a, b in [(100.0, 10.0), (110.0, 10.0), (121.0, 12.0), (121.0, 9.0)]:
        closes.record({"A": a, "B": b})
    # three ticks kept: 110, 121, 121 and 10, 12, 9
    assert closes.returns(["B", "A"]) == pytest.approx(np.array([[0.2, 0.1], [-0.25, 0.0]]))


def test_a_symbol_recorded_later_or_never_has_returns_of_zero_before_and_throughout() -> None:
    closes = SessionCloses(10)
    closes.record({"A": 100.0})
    closes.record({"A": 105.0})
    closes.record({"A": 105.0, "NEW": 50.0})
    closes.record({"A": 100.0, "NEW": 55.0})
    r = closes.returns(["A", "NEW", "NEVER"])
    assert r.shape == (3, 3)
    assert r[:, 0] == pytest.approx([0.05, 0.0, 100.0 / 105.0 - 1.0])
    assert r[:, 1] == pytest.approx([0.0, 0.0, 0.1])
    assert r[:, 2] == pytest.approx([0.0, 0.0, 0.0])


def test_under_two_ticks_there_are_no_returns() -> None:
    closes = SessionCloses(5)
    assert closes.returns(["A"]).shape == (0, 1)
    closes.record({"A": 1.0})
    assert closes.returns(["A"]).shape == (0, 1)
