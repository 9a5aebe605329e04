"""CcxtVenue against the local Binance mock (a real ccxt.binance client over HTTP)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from quorum_common.testing.mock_exchange import MockExchange, make_ccxt_client
from quorum_execution.ccxt_venue import CcxtVenue
from quorum_execution.config import ExecutionSettings
from quorum_execution.costs import CostModel
from quorum_execution.engine import ExecutionEngine
from quorum_execution.testing import DAY_NS, T0, Collect, bar, order, trading_state

SYMBOL, MARKET = "BTC-USD", "BTC/USDT"
D1, D2, D3 = (T0 + k * DAY_NS for k in (1, 2, 3))


@pytest.fixture
def mock() -> Iterator[MockExchange]:
    with MockExchange(symbols=(MARKET,), seed=3, base_prices={MARKET: 100.0}) as m:
        yield m


class SnapshotPublisher(Collect):
    """Remembers how many orders the mock had received when each report was published."""

    def __init__(self, mock: MockExchange) -> None:
        super().__init__()
        self.mock = mock
        self.sent_before: list[tuple[str, int]] = []

    def publish(self, topic, record, *, key=None) -> None:
        super().publish(topic, record, key=key)
        if topic == "exec.reports":
            self.sent_before.append((record["status"], len(self.mock.orders_received)))


def make(mock: MockExchange) -> tuple[ExecutionEngine, SnapshotPublisher, CcxtVenue]:
    fees = CostModel(fee_bps={"default": 10.0}).fee
    venue = CcxtVenue(make_ccxt_client(mock), markets={SYMBOL: MARKET}, fee_model=fees)
    pub = SnapshotPublisher(mock)
    return ExecutionEngine(ExecutionSettings(), pub, venue=venue), pub, venue


def crypto_order(**kw) -> dict:
    return order(symbol=SYMBOL, asset_class="crypto", **kw)


def crypto_bar(ts: int) -> dict:
    return bar(ts, symbol=SYMBOL, asset_class="crypto")


def test_market_order_reaches_the_mock_with_its_client_id_after_it_is_journaled(mock, feed) -> None:
    engine, pub, venue = make(mock)
    mock.set_fill_price(MARKET, 101.0)
    feed(engine, ("orders.approved", crypto_order(cid="q-1", quantity=0.5, ref=100.0)))
    (sent,) = mock.orders_received
    assert sent["newClientOrderId"] == "q-1" and sent["side"] == "BUY" and sent["type"] == "MARKET"
    assert sent["symbol"] == "BTCUSDT" and float(sent["quantity"]) == 0.5
    assert pub.sent_before == [("ACCEPTED", 0)]  # recorded before sending
    assert pub.on("exec.fills") == []  # fills come back at the next bar
    feed(engine, ("md.bars", crypto_bar(D1)))
    (fill,) = pub.on("exec.fills")
    assert fill["ts_event"] == D1 and fill["venue"] == "BINANCE" and fill["venue_order_id"] == str(sent["orderId"])
    assert fill["quantity"] == 0.5 and fill["price"] == pytest.approx(101.0) and fill["is_final"]
    assert fill["fee"] == pytest.approx(0.5 * 101.0 * 10e-4)  # the configured schedule: the query has no fee
    assert fill["slippage_bps"] == pytest.approx(100.0)
    assert pub.statuses("q-1") == ["ACCEPTED", "FILLED"]
    assert venue.working == []


def test_limit_order_partial_fills_come_back_with_incremental_prices(mock, feed) -> None:
    engine, pub, _ = make(mock)
    feed(engine, ("orders.approved", crypto_order(cid="q-2", quantity=1.0, order_type="LIMIT", limit_price=99.0,
                                                  tif="GTC")),
         ("md.bars", crypto_bar(D1)))
    assert pub.statuses("q-2") == ["ACCEPTED"]
    (sent,) = mock.orders_received
    assert float(sent["price"]) == 99.0
    mock.fill_order(sent["orderId"], quantity=0.25, price=99.0)
    feed(engine, ("md.bars", crypto_bar(D2)))
    mock.fill_order(sent["orderId"], price=98.0)
    feed(engine, ("md.bars", crypto_bar(D3)))
    fills = pub.on("exec.fills")
    assert [(f["quantity"], f["ts_event"]) for f in fills] == [(0.25, D2), (0.75, D3)]
    assert [f["price"] for f in fills] == pytest.approx([99.0, 98.0])
    assert pub.statuses("q-2") == ["ACCEPTED", "PARTIALLY_FILLED", "FILLED"]
    assert pub.on("exec.reports")[-1]["avg_price"] == pytest.approx(0.25 * 99.0 + 0.75 * 98.0)


def test_halt_cancels_at_the_venue_and_sends_nothing_after(mock, feed) -> None:
    engine, pub, venue = make(mock)
    feed(engine, ("orders.approved", crypto_order(cid="q-3", order_type="LIMIT", limit_price=90.0, tif="GTC")),
         ("control.state", trading_state("HALTED", 1, T0 + 3)),
         ("orders.approved", crypto_order(cid="q-4", ts=T0 + 4)))
    assert mock.open_orders() == []
    assert pub.statuses("q-3") == ["ACCEPTED", "CANCELLED"]
    assert pub.statuses("q-4") == ["REJECTED"]
    assert [o["newClientOrderId"] for o in mock.orders_received] == ["q-3"]
    assert venue.working == []


def test_venue_refusal_is_a_rejected_report(mock, feed) -> None:
    engine, pub, _ = make(mock)
    mock.fail_next_order(-2010, "Account has insufficient balance")
    feed(engine, ("orders.approved", crypto_order(cid="q-5")))
    assert pub.statuses("q-5") == ["ACCEPTED", "REJECTED"]
    assert "insufficient balance" in pub.on("exec.reports")[-1]["reason"]


def test_restarted_engine_never_sends_a_journaled_order_again(mock, feed) -> None:
    first, pub1, _ = make(mock)
    feed(first, ("orders.approved", crypto_order(cid="q-6")))
    restarted, pub2, _ = make(mock)
    feed(restarted, *[("exec.reports", r) for r in pub1.on("exec.reports")],
         ("orders.approved", crypto_order(cid="q-6")))
    assert [o["newClientOrderId"] for o in mock.orders_received] == ["q-6"]
    assert pub2.out == []


def test_cancelled_at_the_venue_is_reported(mock, feed) -> None:
    engine, pub, venue = make(mock)
    feed(engine, ("orders.approved", crypto_order(cid="q-7", order_type="LIMIT", limit_price=90.0, tif="GTC")))
    venue.exchange.cancel_order(str(mock.orders_received[0]["orderId"]), MARKET)  # cancelled outside the desk
    feed(engine, ("md.bars", crypto_bar(D1)))
    assert pub.statuses("q-7") == ["ACCEPTED", "CANCELLED"]
    assert pub.on("exec.reports")[-1]["reason"] == "venue status canceled"


def test_order_already_at_the_venue_is_adopted_not_sent_again(mock, feed) -> None:
    # an earlier run sent the order and crashed before its ACCEPTED report was committed
    make_ccxt_client(mock).create_order(MARKET, "limit", "buy", 1.0, 95.0, params={"newClientOrderId": "q-8"})
    engine, pub, venue = make(mock)
    feed(engine, ("orders.approved", crypto_order(cid="q-8", quantity=1.0, order_type="LIMIT", limit_price=95.0,
                                                  tif="GTC")))
    (sent,) = mock.orders_received
    assert pub.statuses("q-8") == ["ACCEPTED"] and venue.working == ["q-8"]
    mock.fill_order(sent["orderId"])
    feed(engine, ("md.bars", crypto_bar(D1)))
    assert pub.statuses("q-8") == ["ACCEPTED", "FILLED"]
    assert pub.on("exec.fills")[0]["venue_order_id"] == str(sent["orderId"])


def test_unreachable_venue_rejects_the_order(mock, feed) -> None:
    engine, pub, _ = make(mock)
    mock.stop()
    feed(engine, ("orders.approved", crypto_order(cid="q-9")))
    assert pub.statuses("q-9") == ["ACCEPTED", "REJECTED"]
    assert pub.on("exec.reports")[-1]["reason"].startswith("venue: NetworkError")
