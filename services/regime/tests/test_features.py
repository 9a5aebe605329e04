"""Feature rows: returns, realised volatility, VIX alignment and forward fill."""

from __future__ import annotations

import math

import numpy as np
import pytest
from quorum_regime.features import FeatureBuilder, StaleBarError


def test_log_return_and_annualised_realised_vol() -> None:
    fb = FeatureBuilder(vol_window=3, periods_per_year=252, max_pending=5)
    closes = [100.0, 101.0, 99.0, 102.0, 102.5]
    rows = [r for i, c in enumerate(closes) for r in fb.add_market(i, c, f"e{i}")]
    assert [r.ts for r in rows] == [3, 4]  # three returns needed
    rets = np.diff(np.log(closes))
    assert rows[-1].log_return == pytest.approx(rets[-1])
    assert rows[-1].realised_vol == pytest.approx(np.std(rets[-3:], ddof=1) * math.sqrt(252))
    assert rows[-1].bar_event_id == "e4"
    assert rows[-1].vix is None


def test_market_bar_waits_for_the_vix_bar_of_its_time() -> None:
    fb = FeatureBuilder(vol_window=2, periods_per_year=252, max_pending=5)
    for i in range(3):
        fb.add_vix(i, 20.0 + i)
        fb.add_market(i, 100.0 + i, f"e{i}")
    assert fb.add_market(3, 104.0, "e3") == []  # VIX at 3 not in yet
    rows = fb.add_vix(3, 30.0)
    assert [(r.ts, r.vix) for r in rows] == [(3, 30.0)]


def test_missing_vix_bar_is_forward_filled_once_the_vix_stream_moves_on() -> None:
    fb = FeatureBuilder(vol_window=2, periods_per_year=252, max_pending=5)
    for i in range(3):
        fb.add_vix(i, 20.0 + i)
        fb.add_market(i, 100.0 + i, f"e{i}")
    assert fb.add_market(3, 104.0, "e3") == []
    rows = fb.add_vix(5, 40.0)  # no VIX bar at 3: the one at 2 carries forward
    assert [(r.ts, r.vix) for r in rows] == [(3, 22.0)]


def test_market_bars_stop_waiting_after_max_pending() -> None:
    fb = FeatureBuilder(vol_window=2, periods_per_year=252, max_pending=2)
    fb.add_vix(0, 20.0)
    rows = [r for i in range(6) for r in fb.add_market(i, 100.0 + i, f"e{i}")]
    assert [r.ts for r in rows] == [2, 3]  # bars 4 and 5 still wait; 0 and 1 only warm up
    assert all(r.vix == 20.0 for r in rows)


def test_order_of_market_and_vix_bars_of_one_time_does_not_matter() -> None:
    def run(vix_first: bool) -> list[tuple[int, float, float | None]]:
        fb = FeatureBuilder(vol_window=2, periods_per_year=252, max_pending=5)
        out = []
        for i in range(8):
            steps = [lambda i=i: fb.add_market(i, 100.0 * (1.01 ** (i % 3)), f"e{i}"),
                     lambda i=i: fb.add_vix(i, 15.0 + i)]
            for step in steps[::-1] if vix_first else steps:
                out += [(r.ts, r.realised_vol, r.vix) for r in step()]
        return out

    assert run(True) == run(False)
    assert len(run(True)) == 6


def test_duplicate_or_older_bars_are_refused() -> None:
    fb = FeatureBuilder(vol_window=2, periods_per_year=252, max_pending=5)
    fb.add_market(5, 100.0, "a")
    with pytest.raises(StaleBarError):
        fb.add_market(5, 100.0, "a")
    fb.add_vix(5, 20.0)
    with pytest.raises(StaleBarError):
        fb.add_vix(4, 20.0)
