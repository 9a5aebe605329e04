"""CcxtVenue against the local Binance mock (a real ccxt.binance client over HTTP)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from quorum_common.testing.mock_exchange import MockExchange, make_ccxt_client
from quorum_execution.app import build_engine
from quorum_execution.ccxt_venue import CcxtVenue
from quorum_execution.config import ExecutionSettings
from quorum_execution.costs import CostModel
from quorum_execution.engine import ExecutionEngine
from quorum_execution.testing import DAY_NS, T0, Collect, bar, order, trading_state
from quorum_execution.venue import Order

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


def restarted_from(mock: MockExchange, pub: Collect, orders: list[dict]) -> tuple[ExecutionEngine, Collect, CcxtVenue]:
    """A new engine and venue object, restored as the service is at start: from its report history and the
    ``SubmitOrder`` records of the orders it leaves working."""
    fees = CostModel(fee_bps={"default": 10.0}).fee
    venue = CcxtVenue(make_ccxt_client(mock), markets={SYMBOL: MARKET}, fee_model=fees)
    pub2 = Collect()
    return build_engine(ExecutionSettings(), pub2, pub.on("exec.reports"), venue=venue, orders=orders), pub2, venue


def test_a_restarted_engine_reports_the_fills_of_an_order_an_earlier_run_left_at_the_exchange(mock, feed) -> None:
    resting = crypto_order(cid="q-10", quantity=2.0, order_type="LIMIT", limit_price=95.0, tif="GTC")
    first, pub1, _ = make(mock)
    feed(first, ("orders.approved", resting))
    (sent,) = mock.orders_received
    mock.fill_order(sent["orderId"], quantity=0.5, price=95.0)
    feed(first, ("md.bars", crypto_bar(D1)))
    assert pub1.statuses("q-10") == ["ACCEPTED", "PARTIALLY_FILLED"]
    mock.fill_order(sent["orderId"], price=94.0)  # the rest fills while the service is down
    restarted, pub2, venue = restarted_from(mock, pub1, [resting])
    feed(restarted, ("md.bars", crypto_bar(D2)))
    assert pub2.statuses("q-10") == ["FILLED"] and len(mock.orders_received) == 1  # not sent again
    (fill,) = pub2.on("exec.fills")
    assert fill["quantity"] == pytest.approx(1.5) and fill["price"] == pytest.approx(94.0)
    assert fill["fee"] == pytest.approx(1.5 * 94.0 * mock.fee_rate)  # the fee of the earlier fill is not charged again
    assert fill["fill_id"] != pub1.on("exec.fills")[0]["fill_id"]
    report = pub2.on("exec.reports")[-1]
    assert report["filled_quantity"] == pytest.approx(2.0)
    assert report["avg_price"] == pytest.approx((0.5 * 95.0 + 1.5 * 94.0) / 2.0)
    assert venue.working == []


def test_an_order_the_exchange_never_got_ends_with_a_rejected_report_after_a_restart(mock, feed) -> None:
    first, pub1, _ = make(mock)
    mock.fail_next_order(-1001, "Internal error")  # stands for a crash between the report and the send
    feed(first, ("orders.approved", crypto_order(cid="q-11")))
    accepted = pub1.on("exec.reports")[:1]
    assert accepted[0]["status"] == "ACCEPTED"
    history = Collect()
    history.out = [("exec.reports", accepted[0])]
    restarted, pub2, _ = restarted_from(mock, history, [crypto_order(cid="q-11")])
    feed(restarted, ("md.bars", crypto_bar(D1)))
    assert pub2.statuses("q-11") == ["REJECTED"]
    assert pub2.on("exec.reports")[0]["reason"].startswith("venue after a restart:")
    assert restarted.working == {} and restarted.resuming == {}


class FeeReportingExchange:
    """An exchange whose order query reports the cumulative fee (the mock's, like Binance's, does not)."""

    id = "feeful"

    def fetch_order(self, order_id, market, params=None) -> dict:
        return {"id": "v-1", "clientOrderId": "x-1", "filled": 2.0, "average": 10.0, "status": "closed",
                "fee": {"cost": 4.0}}


def test_an_adopted_order_is_charged_the_rest_of_the_venue_fee_pro_rata() -> None:
    venue = CcxtVenue(FeeReportingExchange(), markets={SYMBOL: MARKET})
    ack = venue.adopt(Order.from_record(crypto_order(cid="x-1", quantity=2.0)), 0.5, 10.0, 1, T0)
    assert ack.accepted and ack.venue_order_id == "v-1"
    (fill,) = venue.on_bar(crypto_bar(D1))
    assert fill.quantity == pytest.approx(1.5) and fill.price == pytest.approx(10.0)
    assert fill.fee == pytest.approx(3.0)  # 4.0 in all, a quarter of it paid with the 0.5 filled before
    assert fill.final and fill.fill_id == "v-1-2" and venue.working == []
