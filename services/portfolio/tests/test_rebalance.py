"""Rebalancing policy: triggers (initial, calendar, drift with cooldown) and the trades planned."""

from __future__ import annotations

import pytest
from quorum_portfolio.mandate import RebalancePolicy
from quorum_portfolio.rebalance import NS_PER_DAY, max_drift, plan_trades, rebalance_trigger, round_quantity

POLICY = RebalancePolicy(calendar_days=30, drift_band=0.05, cooldown_days=5, min_trade_value=100.0)


def whole(_: str) -> float:
    return 1.0


def test_first_rebalance_is_initial() -> None:
    assert rebalance_trigger(POLICY, 0, None, 0.0) == "INITIAL"


def test_calendar_period_triggers_without_drift() -> None:
    assert rebalance_trigger(POLICY, 29 * NS_PER_DAY, 0, 0.0) is None
    assert rebalance_trigger(POLICY, 30 * NS_PER_DAY, 0, 0.0) == "CALENDAR"
    off = RebalancePolicy(0, 0.05, 5, 100.0)
    assert rebalance_trigger(off, 365 * NS_PER_DAY, 0, 0.0) is None


def test_drift_triggers_only_beyond_the_band_and_after_the_cooldown() -> None:
    assert rebalance_trigger(POLICY, 10 * NS_PER_DAY, 0, 0.05) is None
    assert rebalance_trigger(POLICY, 10 * NS_PER_DAY, 0, 0.06) == "DRIFT"
    assert rebalance_trigger(POLICY, 4 * NS_PER_DAY, 0, 0.30) is None
    assert rebalance_trigger(POLICY, 5 * NS_PER_DAY, 0, 0.30) == "DRIFT"


def test_max_drift_counts_held_and_targeted_symbols() -> None:
    assert max_drift({"A": 0.5, "X": 0.07}, {"A": 0.48, "B": 0.04}) == pytest.approx(0.07)


def test_trades_sells_first_whole_units_and_min_trade_value() -> None:
    trades = plan_trades(
        targets={"A": 0.5, "B": 0.3, "C": 0.2, "D": 0.0},
        holdings={"A": 0, "B": 30, "C": 20, "D": 10},
        prices={"A": 33.0, "B": 100.0, "C": 100.0, "D": 50.0},
        nav=10_000.0, cash=5_000.0, min_trade_value=100.0, step=whole)
    assert [(t.side, t.symbol) for t in trades] == [("SELL", "D"), ("BUY", "A")]  # B on target, C gap 0 < 100
    sell, buy = trades
    assert sell.quantity == 10 and sell.reduces_risk
    assert buy.quantity == 151 and not buy.reduces_risk  # floor(5000 / 33)
    assert buy.notional == pytest.approx(151 * 33.0)


def test_long_only_never_sells_more_than_held() -> None:
    trades = plan_trades({"A": 0.0}, {"A": 3}, {"A": 100.0}, 1000.0, 700.0, 1.0, whole)
    assert [(t.side, t.quantity) for t in trades] == [("SELL", 3)]
    assert plan_trades({"A": 0.0}, {}, {"A": 100.0}, 1000.0, 1000.0, 1.0, whole) == []


def test_fractional_steps_for_crypto() -> None:
    trades = plan_trades({"BTC": 0.1}, {}, {"BTC": 30_000.0}, 10_000.0, 10_000.0, 10.0,
                         lambda s: 1e-6 if s == "BTC" else 1.0)
    assert trades[0].quantity == pytest.approx(0.033333)
    assert round_quantity(2.9999999, 1.0) == 2.0 and round_quantity(3.0, 1.0) == 3.0


def test_buys_are_scaled_to_cash_plus_sell_proceeds() -> None:
    trades = plan_trades({"A": 0.5, "B": 0.5}, {}, {"A": 10.0, "B": 10.0}, 10_000.0, 5_000.0, 1.0, whole)
    assert sum(t.notional for t in trades) <= 5_000.0
    assert [t.quantity for t in trades] == [250, 250]


def test_buys_fit_the_gross_room_left_before_the_sells() -> None:
    """A rotation from A to B in a book at its gross limit: the sell goes out whole, the buy only as far as the
    room the limit leaves now (risk may check it before the sell); the rest waits for a later rebalance."""
    holdings, prices = {"A": 900}, {"A": 10.0, "B": 10.0}  # 9,000 of a 10,000 NAV, 1,000 cash
    free = plan_trades({"A": 0.0, "B": 0.9}, holdings, prices, 10_000.0, 1_000.0, 1.0, whole)
    assert [(t.symbol, t.side, t.quantity) for t in free] == [("A", "SELL", 900), ("B", "BUY", 900)]
    capped = plan_trades({"A": 0.0, "B": 0.9}, holdings, prices, 10_000.0, 1_000.0, 1.0, whole, buy_room=500.0)
    assert [(t.symbol, t.side, t.quantity) for t in capped] == [("A", "SELL", 900), ("B", "BUY", 50)]
    assert plan_trades({"A": 0.0, "B": 0.9}, holdings, prices, 10_000.0, 1_000.0, 1.0, whole, buy_room=0.0) == \
        [t for t in capped if t.side == "SELL"]
    # a book over its (tightened) gross limit with nothing to buy: only the sell, no division by a zero spend
    over = plan_trades({"A": 0.5}, holdings, prices, 10_000.0, 1_000.0, 1.0, whole, buy_room=-4_000.0)
    assert [(t.symbol, t.side, t.quantity) for t in over] == [("A", "SELL", 400)]


def test_symbols_without_price_are_left_alone() -> None:
    assert plan_trades({"A": 0.5}, {}, {}, 10_000.0, 10_000.0, 1.0, whole) == []


def test_no_order_exceeds_the_risk_layers_notional_limit() -> None:
    from quorum_portfolio.rebalance import ORDER_LIMIT_MARGIN, plan_trades

    trades = plan_trades({"AAA": 0.5, "BBB": 0.1}, {}, {"AAA": 10.0, "BBB": 20.0}, nav=1_000_000.0,
                         cash=1_000_000.0, min_trade_value=500.0, step=lambda s: 1.0, max_order_notional=100_000.0)
    by_symbol = {t.symbol: t for t in trades}
    assert by_symbol["AAA"].notional <= 100_000.0 * ORDER_LIMIT_MARGIN
    assert by_symbol["AAA"].quantity == 9_900  # clipped from 50,000 shares
    assert by_symbol["BBB"].quantity == 4_950  # 100,000 wanted, clipped as well
