"""Every pre-trade check: an order just inside passes to orders.approved, one just beyond is rejected with the
right reason code and never reaches orders.approved."""

from __future__ import annotations

import math

import pytest
from quorum_risk import testing as t
from quorum_risk.testing import Harness, market


def assert_approved(h: Harness, order: dict) -> dict:
    d = h.decide(order)
    assert (d["verdict"], d["reason_code"]) == ("APPROVED", "OK"), d["reason_detail"]
    assert order["client_order_id"] in h.approved()
    return d


def assert_rejected(h: Harness, order: dict, code: str) -> dict:
    d = h.decide(order)
    assert (d["verdict"], d["reason_code"]) == ("REJECTED", code), d["reason_detail"]
    assert d["checks"][-1]["passed"] is False and all(c["passed"] for c in d["checks"][:-1])
    assert order["client_order_id"] not in h.approved()
    return d


def test_approved_order_lists_every_check_and_copies_the_order(h: Harness) -> None:
    d = assert_approved(h, t.order("ok", quantity=10))
    assert [c["name"] for c in d["checks"]][:3] == ["instrument", "quantity", "price"]
    assert len(d["checks"]) == 16 and all(c["passed"] for c in d["checks"])
    sub = h.seen["orders.approved"][-1]
    assert sub["risk_decision_id"] == d["event_id"] and sub["risk_state"] == "ACTIVE" and sub["approved_by"] == "risk"
    assert (sub["quantity"], sub["symbol"], sub["side"]) == (10.0, "AAPL", "BUY")


def test_unknown_symbol_is_rejected(h: Harness) -> None:
    assert_rejected(h, t.order("x", symbol="ZZZZ"), "INVALID_INSTRUMENT")


@pytest.mark.parametrize("qty", [math.nan, math.inf, 0.0, -5.0, 1.0000001])
def test_invalid_quantity_is_rejected(h: Harness, qty: float) -> None:
    assert_rejected(h, t.order("q", quantity=qty), "INVALID_QUANTITY")


def test_quantity_precision_follows_the_asset_class(h: Harness) -> None:
    assert_approved(h, t.order("eq", quantity=1.000001))  # equity: 6 decimals
    assert_approved(h, t.order("btc", symbol="BTC-USD", quantity=0.00000001, price=50_000.0))  # crypto: 8
    assert_rejected(h, t.order("btc2", symbol="BTC-USD", quantity=0.000000001, price=50_000.0), "INVALID_QUANTITY")


@pytest.mark.parametrize(("price", "limit"), [(math.nan, None), (0.0, None), (-1.0, None), (math.inf, None),
                                              (100.0, math.nan), (100.0, -100.0), (100.0, 100.000000001)])
def test_invalid_price_is_rejected(h: Harness, price: float, limit: float | None) -> None:
    assert_rejected(h, t.order("p", price=price, limit_price=limit), "INVALID_PRICE")


def test_reference_price_needs_no_precision(h: Harness) -> None:
    assert_approved(h, t.order("adj", price=100.123456789012))  # adjusted closes have long decimals


def test_limit_order_without_limit_price_is_rejected(h: Harness) -> None:
    o = {**t.order("lim"), "order_type": "LIMIT"}
    assert_rejected(h, o, "INVALID_PRICE")


def test_duplicate_client_order_id_is_rejected_and_approved_once(h: Harness) -> None:
    assert_approved(h, t.order("dup"))
    d = h.decide(t.order("dup", ts=t.T0 + 5))
    assert (d["verdict"], d["reason_code"]) == ("REJECTED", "DUPLICATE_ORDER_ID")
    assert h.approved().count("dup") == 1 and len(h.decisions()) == 2


def test_fat_finger_quantity_against_average_volume() -> None:
    h2 = market(Harness(volume_window=1))
    h2.send("md.bars", t.bar("JPM", 100.0, ts=t.T0 + 1000, volume=50_000.0))  # average 50k -> 500 shares
    assert_approved(h2, t.order("in", symbol="JPM", quantity=500, ts=t.T0 + 1002))
    assert_rejected(h2, t.order("out", symbol="JPM", quantity=500.01, ts=t.T0 + 1002), "FAT_FINGER_QUANTITY")


def test_average_volume_is_over_the_window() -> None:
    h = market(Harness(volume_window=2))  # window: 10M then 60k -> average 5.03M -> 50 300 shares
    h.send("md.bars", t.bar("JPM", 100.0, ts=t.T0 + 1000, volume=60_000.0))
    h.send("mandate.compiled", t.mandate(version=2, max_order_notional=1e9, max_order_capital_fraction=10.0,
                                         max_position_weight=10.0))
    assert_approved(h, t.order("in", symbol="JPM", quantity=50_300, ts=t.T0 + 1002))
    assert_rejected(h, t.order("out", symbol="JPM", quantity=50_300.01, ts=t.T0 + 1002), "FAT_FINGER_QUANTITY")


def test_fat_finger_quantity_not_checked_without_volume() -> None:
    h2 = market(Harness(volume_window=1))
    h2.send("md.bars", t.bar("JPM", 100.0, ts=t.T0 + 1000, volume=0.0))
    d = assert_approved(h2, t.order("novol", symbol="JPM", quantity=900, ts=t.T0 + 1002))
    assert "not checked" in next(c for c in d["checks"] if c["name"] == "fat_finger_quantity")["detail"]


@pytest.mark.parametrize(("limits", "cap"), [({}, 100_000.0),  # max_order_notional binds
                                             ({"max_order_capital_fraction": 0.05}, 50_000.0)])  # capital fraction
def test_fat_finger_notional(limits: dict, cap: float) -> None:
    h = Harness().send("mandate.compiled", t.mandate(max_position_weight=0.5, **limits))
    h.send("md.bars", t.bar("JPM", 100.0))
    assert_approved(h, t.order("in", symbol="JPM", quantity=cap / 100))
    d = assert_rejected(h, t.order("out", symbol="JPM", quantity=cap / 100 + 0.01), "FAT_FINGER_NOTIONAL")
    assert d["checks"][-1]["limit"] == cap


def test_order_without_last_price_is_rejected() -> None:
    h = Harness().send("mandate.compiled", t.mandate())
    assert_rejected(h, t.order("nobar"), "STALE_PRICE")


@pytest.mark.parametrize("close", [0.0, math.nan])
def test_invalid_last_price_is_rejected_not_crashed(h: Harness, close: float) -> None:
    h.send("md.bars", t.bar("JPM", close, ts=t.T0 + 1))
    assert_rejected(h, t.order("x", symbol="JPM"), "STALE_PRICE")
    assert h.bus.dead_letters == []


def test_stale_last_price_is_rejected() -> None:
    h = market(Harness())
    h.send("mandate.compiled", t.mandate(version=2, stale_price_ns=100))
    assert_approved(h, t.order("fresh", ts=t.T0 + 100))
    assert_rejected(h, t.order("stale", ts=t.T0 + 101), "STALE_PRICE")


@pytest.mark.parametrize(("price", "limit", "ok"), [(100.0, 105.0, True), (100.0, 105.01, False),
                                                    (95.0, None, True), (94.99, None, False)])
def test_price_collar_against_last_price(h: Harness, price: float, limit: float | None, ok: bool) -> None:
    o = t.order("c", price=price, limit_price=limit)
    if ok:
        assert_approved(h, o)
    else:
        assert_rejected(h, o, "PRICE_COLLAR")


def test_max_position_post_trade_weight(h: Harness) -> None:
    h.send("portfolio.snapshots", t.snapshot({"JPM": (900.0, 100.0)}))
    assert_approved(h, t.order("in", symbol="JPM", quantity=100))  # 1000 * 100 / 1M = 0.10
    d = assert_rejected(h, t.order("out", symbol="JPM", quantity=0.01), "MAX_POSITION")  # in flight counted
    assert d["checks"][-1]["value"] > 0.10


def test_short_position_refused_unless_allowed(h: Harness) -> None:
    h.send("portfolio.snapshots", t.snapshot({"JPM": (10.0, 100.0)}))
    assert_approved(h, t.order("close", symbol="JPM", side="SELL", quantity=10))
    assert_rejected(h, t.order("short", symbol="JPM", side="SELL", quantity=1), "MAX_POSITION")
    h2 = market(Harness()).send("mandate.compiled", t.mandate(version=2, allow_short=True))
    assert_approved(h2, t.order("short", symbol="JPM", side="SELL", quantity=1))


def test_sector_cap_counts_positions_and_in_flight_orders(h: Harness) -> None:
    h.send("portfolio.snapshots", t.snapshot({"AAPL": (900.0, 100.0)}))  # IT 0.09 of cap 0.15
    assert_approved(h, t.order("a", symbol="MSFT", quantity=300))  # in flight: IT 0.12
    assert_rejected(h, t.order("b", symbol="MSFT", quantity=300.01), "SECTOR_CAP")
    assert_approved(h, t.order("c", symbol="MSFT", quantity=300))  # exactly 0.15


def test_asset_class_cap(h: Harness) -> None:
    assert_approved(h, t.order("in", symbol="BTC-USD", quantity=1, price=50_000.0))  # 0.05
    assert_rejected(h, t.order("out", symbol="BTC-USD", quantity=0.0001, price=50_000.0), "ASSET_CLASS_CAP")


def test_gross_exposure_cap() -> None:
    h = market(Harness()).send("mandate.compiled", t.mandate(version=2, max_gross_exposure=0.1))
    h.send("portfolio.snapshots", t.snapshot({"AAPL": (500.0, 100.0)}))
    assert_approved(h, t.order("in", symbol="JPM", quantity=500))
    assert_rejected(h, t.order("out", symbol="JPM", quantity=0.01), "GROSS_EXPOSURE")


def test_reducing_order_passes_exposure_caps_already_breached(h: Harness) -> None:
    h.send("portfolio.snapshots", t.snapshot({"AAPL": (2_000.0, 100.0)}))  # 0.20: above position and IT caps
    assert_rejected(h, t.order("more", quantity=1), "MAX_POSITION")
    d = assert_approved(h, t.order("less", side="SELL", quantity=500))
    assert d["reduces_risk"] is True


def test_rate_limit_is_a_token_bucket_on_event_time() -> None:
    h = market(Harness()).send("mandate.compiled", t.mandate(version=2, max_orders_per_minute=2))
    assert_approved(h, t.order("r1"))
    assert_approved(h, t.order("r2"))
    assert_rejected(h, t.order("r3"), "RATE_LIMIT")
    assert_rejected(h, t.order("r4", ts=t.T0 + 2 + 29_000_000_000), "RATE_LIMIT")  # 0.97 token
    assert_approved(h, t.order("r5", ts=t.T0 + 2 + 30_000_000_000))  # one token refilled


def test_rejected_orders_do_not_spend_rate_tokens() -> None:
    h = market(Harness()).send("mandate.compiled", t.mandate(version=2, max_orders_per_minute=1))
    assert_rejected(h, t.order("bad", symbol="ZZZZ"), "INVALID_INSTRUMENT")
    assert_approved(h, t.order("good"))


def test_max_open_orders_until_execution_reports_final() -> None:
    h = market(Harness()).send("mandate.compiled", t.mandate(version=2, max_open_orders=2))
    assert_approved(h, t.order("o1"))
    assert_approved(h, t.order("o2"))
    assert_rejected(h, t.order("o3"), "MAX_OPEN_ORDERS")
    h.send("exec.reports", t.report("o1", "CANCELLED", ts=t.T0 + 1000))
    assert_approved(h, t.order("o4", ts=t.T0 + 1002))


def test_fills_move_exposure_from_in_flight_to_the_next_snapshot(h: Harness) -> None:
    assert_approved(h, t.order("f1", symbol="JPM", quantity=1000))  # 0.10 in flight
    assert_rejected(h, t.order("f2", symbol="JPM", quantity=1), "MAX_POSITION")
    h.send("exec.fills", t.fill("f1", "JPM", "BUY", 1000, 0, ts=t.T0 + 1000))  # pending until a later snapshot
    assert_rejected(h, t.order("f3", symbol="JPM", quantity=1, ts=t.T0 + 1002), "MAX_POSITION")
    h.send("portfolio.snapshots", t.snapshot({"JPM": (500.0, 100.0)}, ts=t.T0 + 1001))  # booked (and sold half)
    assert_approved(h, t.order("f4", symbol="JPM", quantity=500, ts=t.T0 + 1002))


def test_order_before_any_mandate_fails_closed() -> None:
    h = Harness().send("md.bars", t.bar("AAPL", 100.0))
    d = assert_rejected(h, t.order("early"), "OTHER")
    assert "mandate" in d["reason_detail"]


def test_reduces_risk_flag_of_the_order_is_not_trusted(h: Harness) -> None:
    d = h.decide(t.order("liar", quantity=1, reduces_risk=True))
    assert d["reduces_risk"] is False
