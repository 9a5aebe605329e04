"""Slippage and fee arithmetic of the cost model."""

from __future__ import annotations

import itertools
import math

import pytest
from quorum_execution.costs import CostModel


def test_slippage_is_half_spread_plus_fixed_plus_sqrt_impact(costs: CostModel) -> None:
    # equity: 1 bp half spread + 1 bp fixed + 50 bp * sqrt(10_000 / 1_000_000) = 2 + 5
    assert costs.slippage_bps("equity", 10_000, 100.0, 1_000_000) == pytest.approx(7.0)
    # unknown asset class uses the default half spread (2 bp)
    assert costs.slippage_bps("bond", 10_000, 100.0, 1_000_000) == pytest.approx(8.0)


def test_slippage_grows_with_order_size(costs: CostModel) -> None:
    sizes = [1, 10, 100, 1_000, 10_000, 100_000]
    slips = [costs.slippage_bps("equity", q, 50.0, 2e6) for q in sizes]
    assert all(a < b for a, b in itertools.pairwise(slips))


def test_without_volume_impact_is_against_the_adv_notional(costs: CostModel) -> None:
    # notional 500_000 against equity ADV 5e7 → participation 0.01 → impact 50 * 0.1 = 5 bp
    assert costs.slippage_bps("equity", 5_000, 100.0, 0.0) == pytest.approx(1 + 1 + 5)
    small, large = (costs.slippage_bps("equity", q, 100.0, 0.0) for q in (10, 10_000))
    assert small < large


def test_fill_price_moves_against_the_taker(costs: CostModel) -> None:
    slip = costs.slippage_bps("equity", 10_000, 100.0, 1e6)
    assert costs.fill_price(+1, "equity", 10_000, 100.0, 1e6) == pytest.approx(100.0 * (1 + slip / 1e4))
    assert costs.fill_price(-1, "equity", 10_000, 100.0, 1e6) == pytest.approx(100.0 * (1 - slip / 1e4))


def test_fee_is_bps_of_notional_per_asset_class_with_a_minimum(costs: CostModel) -> None:
    assert costs.fee("equity", 1_000_000.0) == pytest.approx(100.0)  # 1 bp
    assert costs.fee("crypto", 1_000_000.0) == pytest.approx(1_000.0)  # 10 bp
    assert costs.fee("fx", 1_000_000.0) == pytest.approx(200.0)  # default 2 bp
    assert costs.fee("equity", 5_000.0) == 1.0  # 0.5 below the 1.0 minimum
    assert costs.fee("equity", -1_000_000.0) == pytest.approx(100.0)


def test_zero_cost_model_is_free() -> None:
    free = CostModel()
    assert free.slippage_bps("equity", 1e9, 1.0, 1.0) == 0.0
    assert free.fee("equity", 1e9) == 0.0
    assert math.isfinite(free.fill_price(1, "equity", 1.0, 1.0, 0.0))
