"""Ledger arithmetic: average cost, partial fills, fees, PnL, NAV, peak, drawdown, exposures."""

from __future__ import annotations

import pytest
from quorum_portfolio.ledger import Ledger


def test_partial_buys_average_the_cost_and_fees_reduce_cash_only() -> None:
    led = Ledger(10_000.0)
    assert led.apply_fill("f1", "AAA", "BUY", 10, 100.0, 1.0, "Tech", "equity")
    assert led.apply_fill("f2", "AAA", "BUY", 30, 104.0, 3.0, "Tech", "equity")
    pos = led.positions["AAA"]
    assert pos.quantity == 40
    assert pos.avg_cost == pytest.approx((10 * 100 + 30 * 104) / 40)  # 103.0
    assert led.cash == pytest.approx(10_000 - 1000 - 3120 - 4)
    assert led.fees_paid == pytest.approx(4.0)
    assert led.realised_pnl == 0.0


def test_partial_sells_realise_against_average_cost() -> None:
    led = Ledger(10_000.0)
    led.apply_fill("f1", "AAA", "BUY", 40, 103.0, 0.0)
    led.apply_fill("f2", "AAA", "SELL", 15, 110.0, 2.0)
    led.apply_fill("f3", "AAA", "SELL", 5, 95.0, 2.0)
    pos = led.positions["AAA"]
    assert pos.quantity == 20
    assert pos.avg_cost == pytest.approx(103.0)
    assert led.realised_pnl == pytest.approx(15 * 7 - 5 * 8)  # 65
    assert pos.realised_pnl == pytest.approx(65.0)
    assert led.cash == pytest.approx(10_000 - 4120 + 1650 + 475 - 4)


def test_marks_drive_unrealised_pnl_and_nav_identity() -> None:
    led = Ledger(10_000.0)
    led.apply_fill("f1", "AAA", "BUY", 50, 100.0, 5.0)
    led.apply_fill("f2", "AAA", "SELL", 20, 120.0, 5.0)
    led.mark("AAA", 90.0)
    assert led.unrealised_pnl == pytest.approx(30 * (90 - 100))
    assert led.nav == pytest.approx(led.cash + 30 * 90)
    assert led.nav == pytest.approx(led.capital + led.realised_pnl + led.unrealised_pnl - led.fees_paid)


def test_peak_and_drawdown_include_open_losses() -> None:
    led = Ledger(1_000.0)
    led.apply_fill("f1", "AAA", "BUY", 10, 100.0, 0.0)
    led.mark("AAA", 120.0)
    assert led.peak_nav == pytest.approx(1_200.0)
    assert led.drawdown == 0.0
    led.mark("AAA", 90.0)
    assert led.nav == pytest.approx(900.0)
    assert led.peak_nav == pytest.approx(1_200.0)
    assert led.drawdown == pytest.approx(0.25)
    led.mark("AAA", 130.0)
    assert led.drawdown == 0.0 and led.peak_nav == pytest.approx(1_300.0)


def test_exposures_by_sector_and_asset_class() -> None:
    led = Ledger(10_000.0)
    led.apply_fill("f1", "AAA", "BUY", 20, 100.0, 0.0, "Tech", "equity")
    led.apply_fill("f2", "BBB", "BUY", 10, 100.0, 0.0, "Tech", "equity")
    led.apply_fill("f3", "BTC", "BUY", 0.5, 2000.0, 0.0, "Crypto", "crypto")
    assert led.nav == pytest.approx(10_000.0)
    assert led.exposure_by("sector") == pytest.approx({"Crypto": 0.1, "Tech": 0.3})
    assert led.exposure_by("asset_class") == pytest.approx({"crypto": 0.1, "equity": 0.3})
    assert led.gross_exposure() == pytest.approx(0.4)
    assert led.net_exposure() == pytest.approx(0.4)


def test_sell_beyond_the_position_is_applied_and_opens_a_short() -> None:
    led = Ledger(1_000.0)
    led.apply_fill("f1", "AAA", "BUY", 5, 100.0, 0.0)
    led.apply_fill("f2", "AAA", "SELL", 8, 110.0, 0.0)
    pos = led.positions["AAA"]
    assert led.oversold_fills == 1
    assert pos.quantity == -3 and pos.avg_cost == 110.0
    assert led.realised_pnl == pytest.approx(50.0)
    led.apply_fill("f3", "AAA", "BUY", 3, 100.0, 0.0)
    assert pos.quantity == 0 and pos.avg_cost == 0.0
    assert led.realised_pnl == pytest.approx(80.0)
    assert led.gross_exposure() == 0.0


def test_a_repeated_fill_id_changes_nothing() -> None:
    led = Ledger(1_000.0)
    assert led.apply_fill("f1", "AAA", "BUY", 5, 100.0, 1.0)
    assert not led.apply_fill("f1", "AAA", "BUY", 5, 100.0, 1.0)
    assert led.positions["AAA"].quantity == 5 and led.cash == pytest.approx(499.0)


@pytest.mark.parametrize(("qty", "price", "fee", "match"), [
    (0, 100.0, 0.0, "quantity"), (5, float("nan"), 0.0, "price"), (5, 100.0, -1.0, "fee")])
def test_invalid_fills_are_refused(qty: float, price: float, fee: float, match: str) -> None:
    led = Ledger(1_000.0)
    with pytest.raises(ValueError, match=match):
        led.apply_fill("f", "AAA", "BUY", qty, price, fee)
    assert led.positions == {} and led.cash == 1_000.0
