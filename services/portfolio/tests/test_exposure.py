"""Exposure scales: the drawdown budget's ramp to the lock and the volatility target."""

from __future__ import annotations

import math

import numpy as np
import pytest
from quorum_portfolio.exposure import drawdown_scale, holdings_volatility, scaled, volatility_scale


@pytest.mark.parametrize(("drawdown", "expected"), [
    (0.0, 1.0), (0.04, 1.0),  # under the start of the ramp: full size
    (0.06, 0.75), (0.08, 0.5), (0.11, 0.125),  # on the ramp from 0.04 to the lock at 0.12
    (0.12, 0.0), (0.2, 0.0),  # at and beyond the lock: nothing
])
def test_the_drawdown_scale_falls_linearly_from_the_derisk_level_to_the_lock(drawdown: float, expected: float) -> None:
    assert drawdown_scale(drawdown, 0.04, 0.12) == pytest.approx(expected)


def test_a_relocked_desk_ramps_to_the_deeper_lock_in_force() -> None:
    """After a resume beyond the lock the risk service fires 3 points deeper: the ramp ends there."""
    assert drawdown_scale(0.13, 0.04, 0.16) == pytest.approx(0.03 / 0.12)


def test_without_a_derisk_level_or_a_lock_the_drawdown_does_not_scale() -> None:
    assert drawdown_scale(0.5, None, 0.12) == 1.0
    assert drawdown_scale(0.5, 0.04, None) == 1.0


def test_a_lock_tightened_under_the_derisk_level_leaves_no_ramp() -> None:
    assert drawdown_scale(0.02, 0.04, 0.03) == 1.0
    assert drawdown_scale(0.03, 0.04, 0.03) == 0.0


@pytest.mark.parametrize(("volatility", "target", "expected"), [
    (0.20, 0.10, 0.5), (0.10, 0.10, 1.0), (0.05, 0.10, 1.0),  # never above 1: no leverage
    (None, 0.10, 1.0), (float("nan"), 0.10, 1.0), (0.20, None, 1.0),
])
def test_the_volatility_scale_brings_a_volatile_portfolio_down_to_the_target(
        volatility: float | None, target: float | None, expected: float) -> None:
    assert volatility_scale(volatility, target) == pytest.approx(expected)


def test_scaled_multiplies_every_weight() -> None:
    assert scaled({"A": 0.4, "B": 0.2}, 0.5) == pytest.approx({"A": 0.2, "B": 0.1})


def test_holdings_volatility_is_the_annualised_volatility_of_the_weighted_returns() -> None:
    rng = np.random.default_rng(3)
    returns = rng.normal(0, 0.01, (63, 2))
    expected = np.std(returns[:, 0] * 0.5 + returns[:, 1] * 0.25, ddof=1) * math.sqrt(252)
    assert holdings_volatility(returns, np.array([0.5, 0.25]), 252) == pytest.approx(expected)
    assert holdings_volatility(returns[:1], np.array([1.0, 0.0]), 252) is None


def test_holdings_volatility_takes_the_short_window_when_it_is_higher() -> None:
    """A calm quarter whose last 21 sessions turned turbulent reads at the turbulent volatility; a turbulent quarter
    whose last weeks were calm still reads at the quarter's."""
    rng = np.random.default_rng(4)
    calm, wild = rng.normal(0, 0.005, 42), rng.normal(0, 0.03, 21)
    one = np.array([1.0])
    turned = np.concatenate([calm, wild]).reshape(-1, 1)
    assert holdings_volatility(turned, one, 252, 21) == pytest.approx(np.std(wild, ddof=1) * math.sqrt(252))
    calmed = np.concatenate([wild, calm[:21]]).reshape(-1, 1)
    assert holdings_volatility(calmed, one, 252, 21) == pytest.approx(np.std(calmed, ddof=1) * math.sqrt(252))
    assert holdings_volatility(turned, one, 252) < holdings_volatility(turned, one, 252, 21)
