"""A tightening that names a limit the mandate leaves unset skips it and tightens the rest."""

from __future__ import annotations

import pytest
from quorum_risk.limits import Limits, LimitsError


def limits() -> Limits:
    return Limits(capital=1e6, max_order_notional=1e5, max_order_capital_fraction=0.1,
                  fat_finger_volume_fraction=0.02, max_position_weight=0.1, price_collar_pct=0.05,
                  max_orders_per_minute=60, drawdown_lock=0.08, max_gross_exposure=None)


def test_unset_limit_is_skipped_and_the_others_tighten() -> None:
    tightened = limits().tightened({"max_position_weight": 0.5, "max_gross_exposure": 0.75})
    assert tightened.max_position_weight == pytest.approx(0.05)
    assert tightened.max_gross_exposure is None


def test_a_misspelt_limit_is_still_refused() -> None:
    with pytest.raises(LimitsError, match="max_positon_weight"):
        limits().tightened({"max_positon_weight": 0.5})
