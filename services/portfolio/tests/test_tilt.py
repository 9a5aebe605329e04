"""Decision tilt: direction, STRONG_SELL to zero, HOLD, caps and budget re-applied."""

from __future__ import annotations

import pandas as pd
import pytest
from quorum_portfolio.optimiser import Problem
from quorum_portfolio.tilt import (
    Decision,
    RiskLimits,
    Tilt,
    apply_caps,
    fresh_decisions,
    tilt_weights,
    tilts,
    within_limits,
)

CAPS = Problem(pd.DataFrame(), {"A": "Tech", "B": "Tech", "C": "Food"}, dict.fromkeys("ABC", "equity"),
               sector_caps={"Tech": 0.6})
BASE = {"A": 0.3, "B": 0.3, "C": 0.4}


def d(action: str, score: float) -> Decision:
    return Decision("id", "corr", action, score, 0)


def test_buy_and_sell_scale_by_tilt_times_score() -> None:
    w = tilt_weights(BASE, {"C": d("BUY", 0.5), "A": d("SELL", -0.5)}, 0.5, CAPS, budget=2.0)
    assert w["C"] == pytest.approx(0.4 * 1.25)
    assert w["A"] == pytest.approx(0.3 * 0.75)
    assert w["B"] == pytest.approx(0.3)


def test_strong_sell_cuts_to_zero_and_hold_changes_nothing() -> None:
    w = tilt_weights(BASE, {"A": d("STRONG_SELL", -0.2), "B": d("HOLD", 0.9)}, 0.5, CAPS)
    assert w == pytest.approx({"A": 0.0, "B": 0.3, "C": 0.4})
    kept = tilt_weights(BASE, {"A": d("STRONG_SELL", -0.2)}, 0.5, CAPS, strong_sell_to_zero=False)
    assert kept["A"] == pytest.approx(0.3 * 0.9)


def test_caps_and_budget_are_reapplied_after_the_tilt() -> None:
    w = tilt_weights(BASE, {"A": d("STRONG_BUY", 1.0), "C": d("STRONG_BUY", 1.0)}, 1.0, CAPS)
    # A 0.6, B 0.3 -> Tech 0.9 scaled to its 0.6 cap; C 0.8; total 1.4 scaled to the budget of 1
    assert w == pytest.approx({"A": 0.4 / 1.4, "B": 0.2 / 1.4, "C": 0.8 / 1.4})
    assert w["A"] + w["B"] <= 0.6


def test_apply_caps_keeps_freed_weight_in_cash() -> None:
    w = apply_caps({"A": 0.5, "B": 0.3, "C": 0.1}, CAPS, budget=0.99)
    assert w["A"] + w["B"] == pytest.approx(0.6)
    assert sum(w.values()) == pytest.approx(0.7)


def test_stale_decisions_stop_tilting() -> None:
    old, new = Decision("a", "c", "BUY", 1.0, 100), Decision("b", "c", "SELL", -1.0, 190)
    assert fresh_decisions({"A": old, "B": new}, now_ns=200, max_age_ns=50) == {"B": new}
    assert fresh_decisions({"A": old}, now_ns=150, max_age_ns=50) == {"A": old}


def test_targets_are_cut_to_the_position_limit_then_scaled_to_the_gross_limit() -> None:
    w = within_limits({"A": 0.3, "B": 0.1, "C": 0.4}, RiskLimits(max_position_weight=0.2, max_gross_exposure=0.4))
    assert w == pytest.approx({"A": 0.16, "B": 0.08, "C": 0.16})  # cut to 0.2 / 0.1 / 0.2, then x 0.4 / 0.5
    assert within_limits(BASE, RiskLimits()) == BASE
    assert within_limits(BASE, RiskLimits.from_state({"limits": {"max_position_weight": 0.45, "capital": 1e6}})) == BASE


def test_the_drawdown_lock_in_force_is_where_it_fires_next() -> None:
    """After a risk officer's resume beyond the lock the risk service fires deeper (``drawdown_lock_at``)."""
    limits = {"drawdown_lock": 0.12}
    assert RiskLimits.from_state({"limits": limits}).drawdown_lock == 0.12
    assert RiskLimits.from_state({"limits": limits, "drawdown_lock_at": None}).drawdown_lock == 0.12
    assert RiskLimits.from_state({"limits": limits, "drawdown_lock_at": 0.16}).drawdown_lock == 0.16


def test_tilts_give_each_target_its_share_owed_to_its_decisions_tilt() -> None:
    decisions = {"A": Decision("dA", "c", "SELL", -0.5, 0), "C": Decision("dC", "c", "BUY", 0.5, 0),
                 "B": Decision("dB", "c", "HOLD", 0.9, 0)}
    targets = tilt_weights(BASE, decisions, 0.5, CAPS, budget=2.0)
    untilted = tilt_weights(BASE, {}, 0.5, CAPS, budget=2.0)
    got = tilts(targets, untilted, decisions)
    assert got["C"] == Tilt("dC", pytest.approx((0.5 - 0.4) / 0.5))  # raised by a quarter: a fifth of the target
    assert got["A"] == Tilt("dA", pytest.approx((0.225 - 0.3) / 0.225))  # cut: a negative share
    assert got["B"] == Tilt(None, 0.0)  # HOLD tilts nothing
    scaled = tilts({s: w * 0.5 for s, w in targets.items()}, {s: w * 0.5 for s, w in untilted.items()}, decisions)
    assert scaled["C"].share == pytest.approx(got["C"].share)  # a common scale leaves the shares as they are


def test_a_zero_target_has_no_share_and_the_caps_spillover_stays_the_allocations() -> None:
    decisions = {"A": Decision("dA", "c", "STRONG_SELL", -1.0, 0), "B": Decision("dB", "c", "STRONG_BUY", 1.0, 0)}
    targets = tilt_weights(BASE, decisions, 1.0, CAPS)
    got = tilts(targets, tilt_weights(BASE, {}, 1.0, CAPS), decisions)
    assert got["A"] == Tilt("dA", None)
    assert got["B"].decision_id == "dB" and got["B"].share == pytest.approx(0.5)  # 0.3 -> 0.6
    assert got["C"] == Tilt(None, 0.0)
