"""Slippage against the decision price: per fill, per order and over a window."""

from __future__ import annotations

import numpy as np
import pytest
from quorum_critic.slippage import FillSlippage, SlippageBook, fill_slippage, slippage_bps


def test_positive_slippage_means_worse_than_decided() -> None:
    assert slippage_bps("BUY", 101.0, 100.0) == pytest.approx(100.0)
    assert slippage_bps("SELL", 99.0, 100.0) == pytest.approx(100.0)
    assert slippage_bps("BUY", 99.5, 100.0) == pytest.approx(-50.0)
    assert slippage_bps("SELL", 100.5, 100.0) == pytest.approx(-50.0)


def fill(**kw) -> dict:
    base = {"client_order_id": "o", "symbol": "AAA", "side": "BUY", "quantity": 10.0, "price": 101.0, "fee": 0.5,
            "decision_price": None, "slippage_bps": None}
    return {**base, **kw}


def test_fill_slippage_prefers_the_fill_figure_then_its_decision_price_then_the_decision() -> None:
    assert fill_slippage(fill(slippage_bps=7.0, decision_price=100.0), 90.0).slippage_bps == 7.0
    assert fill_slippage(fill(decision_price=100.0), 50.0).slippage_bps == pytest.approx(100.0)
    traced = fill_slippage(fill(), 100.0)
    assert (traced.decision_price, traced.slippage_bps) == (100.0, pytest.approx(100.0))
    assert fill_slippage(fill(), None).slippage_bps is None


def test_cost_is_slippage_times_decision_notional() -> None:
    f = fill_slippage(fill(decision_price=100.0), None)
    assert f.cost == pytest.approx(10.0)  # paid 1 more on each of 10 units
    assert fill_slippage(fill(), None).cost == 0.0


def test_window_statistics_match_numpy() -> None:
    book = SlippageBook()
    values = [5.0, -2.0, 12.0, 3.0, 40.0]
    for i, v in enumerate(values):
        book.add(FillSlippage(f"o{i}", "AAA", "BUY", 1.0, 100.0, 0.0, 100.0, v))
    book.add(FillSlippage("o9", "AAA", "BUY", 1.0, 100.0, 0.0, None, None))
    stats = book.stats()
    assert stats["count"] == 5
    assert stats["mean_bps"] == pytest.approx(np.mean(values))
    assert stats["median_bps"] == pytest.approx(np.median(values))
    assert stats["p95_bps"] == pytest.approx(np.percentile(values, 95))
    assert stats["max_bps"] == 40.0
    assert stats["cost"] == pytest.approx(sum(values) * 1e-4 * 100.0)


def test_empty_window_has_null_statistics() -> None:
    stats = SlippageBook().stats()
    assert stats["count"] == 0 and stats["mean_bps"] is None and stats["cost"] == 0.0


def test_trades_aggregate_the_fills_of_an_order() -> None:
    book = SlippageBook()
    book.add(fill_slippage(fill(client_order_id="a", side="SELL", quantity=10.0, price=99.0, fee=1.0), 100.0))
    book.add(fill_slippage(fill(client_order_id="a", side="SELL", quantity=30.0, price=98.0, fee=2.0), 100.0))
    book.add(fill_slippage(fill(client_order_id="b", slippage_bps=4.0), None))
    a, b = book.trades()
    assert a["client_order_id"] == "a" and a["quantity"] == 40.0 and a["fees"] == 3.0
    assert a["avg_fill_price"] == pytest.approx(98.25)
    assert a["slippage_bps"] == pytest.approx(175.0)
    assert (b["decision_price"], b["slippage_bps"]) == (None, 4.0)
