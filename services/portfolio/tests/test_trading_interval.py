"""Caps by bar interval: an instrument the desk can trade only every k sessions gets its cap divided by √k."""

from __future__ import annotations

import math

import pytest
from quorum_portfolio.trading_interval import interval_cap, interval_caps


@pytest.mark.parametrize(("interval", "expected"), [
    (None, 0.4), (1.0, 0.4), (0.5, 0.4), (math.nan, 0.4), (4.0, 0.2), (21.0, 0.4 / math.sqrt(21)),
])
def test_interval_cap(interval: float | None, expected: float) -> None:
    assert interval_cap(0.4, interval) == pytest.approx(expected)


def test_interval_caps_cut_only_the_instruments_traded_seldom() -> None:
    caps = interval_caps({"AAPL": 0.4, "BTC-USD": 1.0, "KO": 0.3}, {"AAPL": 1.0, "BTC-USD": 25.0})
    assert caps == pytest.approx({"AAPL": 0.4, "BTC-USD": 0.2, "KO": 0.3})
