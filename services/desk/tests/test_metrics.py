"""Performance metrics against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from quorum_desk.metrics import NS_PER_YEAR, drawdown_series, performance


def test_drawdown_from_running_peak() -> None:
    dd = drawdown_series(np.array([100.0, 120.0, 90.0, 130.0, 117.0]))
    assert dd.tolist() == pytest.approx([0.0, 0.0, 0.25, 0.0, 0.1])


def test_cagr_sharpe_and_calmar_of_a_known_curve() -> None:
    ts = [0, int(NS_PER_YEAR)]
    perf = performance(ts, [100.0, 110.0])
    assert perf.cagr == pytest.approx(0.10)
    assert perf.max_drawdown == 0.0 and perf.calmar == 0.0


def test_volatility_and_sortino_on_alternating_returns() -> None:
    nav = [100.0]
    for i in range(252):
        nav.append(nav[-1] * (1.01 if i % 2 == 0 else 0.995))
    ts = [int(i * NS_PER_YEAR / 252) for i in range(len(nav))]
    perf = performance(ts, nav, traded_notional=2_000.0, fees=12.5, wins=3, closes=4, trades=10)
    rets = np.array(nav[1:]) / np.array(nav[:-1]) - 1
    assert perf.volatility == pytest.approx(rets.std(ddof=1) * math.sqrt(252))
    assert perf.sharpe == pytest.approx(rets.mean() / rets.std(ddof=1) * math.sqrt(252))
    assert perf.sortino > perf.sharpe  # losses are smaller than gains
    assert perf.hit_rate == 0.75 and perf.fees == 12.5
    assert perf.turnover == pytest.approx(2_000.0 / np.mean(nav) / perf.years)


def test_a_single_point_is_refused() -> None:
    with pytest.raises(ValueError, match="two points"):
        performance([0], [1.0])
