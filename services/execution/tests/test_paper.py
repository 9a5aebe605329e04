"""The paper exchange: next-bar fills, slippage, participation, limits and time in force."""

from __future__ import annotations

import pytest
from quorum_execution.costs import CostModel
from quorum_execution.paper import PaperExchange
from quorum_execution.testing import DAY_NS, T0, bar, order
from quorum_execution.venue import Fill, Order, OrderClosed

MINUTE = 60 * 10**9


def venue_order(**kw) -> Order:
    return Order.from_record(order(**kw))


def fills(events) -> list[Fill]:
    return [e for e in events if isinstance(e, Fill)]


def test_fills_at_the_next_bar_not_the_current_one(costs: CostModel) -> None:
    ex = PaperExchange(costs)
    assert ex.submit(venue_order(ts=T0 + 2), T0 + 2).accepted
    assert ex.on_bar(bar(T0, open_=90.0)) == []  # the bar the decision saw
    assert ex.on_bar(bar(T0 + 2, open_=91.0)) == []  # not after the order
    assert ex.on_bar(bar(T0 + DAY_NS, symbol="MSFT")) == []  # another symbol
    (fill,) = ex.on_bar(bar(T0 + DAY_NS, open_=110.0, close=120.0))
    assert fill.ts == T0 + DAY_NS
    assert fill.arrival_price == 110.0
    assert fill.price == pytest.approx(costs.fill_price(1, "equity", 100.0, 110.0, 1e6))
    assert fill.price > 110.0 and fill.final and fill.liquidity == "TAKER"
    assert fill.fee == pytest.approx(costs.fee("equity", fill.quantity * fill.price))
    assert ex.working == []


def test_sell_fills_below_the_open(costs: CostModel) -> None:
    ex = PaperExchange(costs)
    ex.submit(venue_order(side="SELL"), T0 + 2)
    (fill,) = ex.on_bar(bar(T0 + DAY_NS, open_=100.0))
    assert fill.price < 100.0


def test_bigger_orders_get_worse_prices(costs: CostModel) -> None:
    prices = []
    for qty in (10.0, 1_000.0, 50_000.0):
        ex = PaperExchange(costs)
        ex.submit(venue_order(quantity=qty), T0 + 2)
        prices.append(fills(ex.on_bar(bar(T0 + DAY_NS, open_=100.0, volume=1e6)))[0].price)
    assert prices[0] < prices[1] < prices[2]


def test_participation_cap_splits_large_orders_over_bars(costs: CostModel) -> None:
    ex = PaperExchange(costs, max_participation=0.1)
    ex.submit(venue_order(quantity=250.0, tif="GTC"), T0 + 2)
    got = []
    for day in range(1, 6):
        got += fills(ex.on_bar(bar(T0 + day * DAY_NS, volume=1_000.0)))
    assert [f.quantity for f in got] == pytest.approx([100.0, 100.0, 50.0])
    assert sum(f.quantity for f in got) == pytest.approx(250.0)
    assert [f.final for f in got] == [False, False, True]
    assert len({f.fill_id for f in got}) == 3
    assert ex.working == []


def test_participation_cap_is_shared_by_the_orders_of_a_bar(costs: CostModel) -> None:
    ex = PaperExchange(costs, max_participation=0.1)
    ex.submit(venue_order(cid="a", quantity=80.0, tif="GTC"), T0 + 2)
    ex.submit(venue_order(cid="b", quantity=80.0, tif="GTC"), T0 + 2)
    first = fills(ex.on_bar(bar(T0 + DAY_NS, volume=1_000.0)))
    assert {f.client_order_id: f.quantity for f in first} == pytest.approx({"a": 80.0, "b": 20.0})


def test_unknown_volume_fills_everything_with_adv_impact(costs: CostModel) -> None:
    ex = PaperExchange(costs, max_participation=0.01)
    ex.submit(venue_order(quantity=5_000.0), T0 + 2)
    (fill,) = ex.on_bar(bar(T0 + DAY_NS, open_=100.0, volume=0.0))
    assert fill.quantity == 5_000.0 and fill.final
    assert fill.price == pytest.approx(100.0 * (1 + 7e-4))  # 1 + 1 + 50*sqrt(5e5/5e7) = 7 bp


def test_limit_buy_waits_until_the_market_trades_through(costs: CostModel) -> None:
    ex = PaperExchange(costs)
    ex.submit(venue_order(order_type="LIMIT", limit_price=95.0, tif="GTC"), T0 + 2)
    assert ex.on_bar(bar(T0 + DAY_NS, open_=100.0, low=95.0, high=101.0)) == []  # touches, not through
    (fill,) = ex.on_bar(bar(T0 + 2 * DAY_NS, open_=99.0, low=94.0, high=100.0))
    assert fill.price == 95.0 and fill.liquidity == "MAKER"


def test_limit_sell_fills_when_high_goes_through(costs: CostModel) -> None:
    ex = PaperExchange(costs)
    ex.submit(venue_order(side="SELL", order_type="LIMIT", limit_price=105.0, tif="GTC"), T0 + 2)
    assert ex.on_bar(bar(T0 + DAY_NS, open_=100.0, high=104.0)) == []
    (fill,) = ex.on_bar(bar(T0 + 2 * DAY_NS, open_=100.0, high=106.0))
    assert fill.price == 105.0


def test_marketable_limit_never_fills_worse_than_its_limit(costs: CostModel) -> None:
    ex = PaperExchange(costs)
    ex.submit(venue_order(order_type="LIMIT", limit_price=100.01), T0 + 2)
    (fill,) = ex.on_bar(bar(T0 + DAY_NS, open_=100.0, volume=1_000.0))  # slippage would exceed 1 bp
    assert fill.price == 100.01 and fill.liquidity == "TAKER"
    ex.submit(venue_order(cid="o2", order_type="LIMIT", limit_price=110.0), T0 + DAY_NS + 2)
    (fill,) = ex.on_bar(bar(T0 + 2 * DAY_NS, open_=100.0, volume=1e6))
    assert 100.0 < fill.price < 110.0


def test_ioc_fills_what_it_can_and_expires_the_rest(costs: CostModel) -> None:
    ex = PaperExchange(costs, max_participation=0.1)
    ex.submit(venue_order(quantity=250.0, tif="IOC"), T0 + 2)
    fill, closed = ex.on_bar(bar(T0 + DAY_NS, volume=1_000.0))
    assert isinstance(fill, Fill) and fill.quantity == 100.0 and not fill.final
    assert isinstance(closed, OrderClosed) and closed.status == "EXPIRED"
    assert ex.working == []


def test_fok_fills_completely_or_not_at_all(costs: CostModel) -> None:
    ex = PaperExchange(costs, max_participation=0.1)
    ex.submit(venue_order(cid="big", quantity=250.0, tif="FOK"), T0 + 2)
    ex.submit(venue_order(cid="small", quantity=50.0, tif="FOK"), T0 + 2)
    events = ex.on_bar(bar(T0 + DAY_NS, volume=1_000.0))
    assert [(type(e).__name__, e.client_order_id) for e in events] == [("OrderClosed", "big"), ("Fill", "small")]
    assert events[1].quantity == 50.0


def test_day_order_expires_on_the_first_bar_of_the_next_day(costs: CostModel) -> None:
    ex = PaperExchange(costs, max_participation=0.1)
    ex.submit(venue_order(quantity=250.0, tif="DAY"), T0 + 2)
    day1 = T0 + DAY_NS + 9 * 3600 * 10**9
    got = fills(ex.on_bar(bar(day1, volume=1_000.0))) + fills(ex.on_bar(bar(day1 + MINUTE, volume=1_000.0)))
    assert [f.quantity for f in got] == [100.0, 100.0]
    (closed,) = ex.on_bar(bar(T0 + 2 * DAY_NS + 9 * 3600 * 10**9, volume=1_000.0))
    assert isinstance(closed, OrderClosed) and closed.status == "EXPIRED"


def test_cancel_stops_a_working_order(costs: CostModel) -> None:
    ex = PaperExchange(costs)
    ex.submit(venue_order(tif="GTC"), T0 + 2)
    assert ex.cancel("o1", T0 + 3) is True
    assert ex.cancel("o1", T0 + 3) is False
    assert ex.on_bar(bar(T0 + DAY_NS)) == []


@pytest.mark.parametrize("kw", [{"quantity": 0.0}, {"quantity": float("nan")},
                                {"order_type": "LIMIT", "limit_price": None},
                                {"order_type": "LIMIT", "limit_price": -1.0}])
def test_invalid_orders_are_refused(costs: CostModel, kw: dict) -> None:
    ex = PaperExchange(costs)
    ack = ex.submit(venue_order(**kw), T0 + 2)
    assert not ack.accepted and ack.reason
    assert ex.submitted == []


def test_duplicate_working_id_is_refused(costs: CostModel) -> None:
    ex = PaperExchange(costs)
    assert ex.submit(venue_order(), T0 + 2).accepted
    assert ex.submit(venue_order(), T0 + 2).reason == "duplicate client order id"


def test_participation_must_be_a_fraction(costs: CostModel) -> None:
    with pytest.raises(ValueError, match="max_participation"):
        PaperExchange(costs, max_participation=1.5)
