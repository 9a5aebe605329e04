"""The local Binance mock, exercised through a real ccxt client."""

from __future__ import annotations

import ccxt
import pytest
from quorum_common.testing.mock_exchange import DEFAULT_START_MS, MockExchange, make_ccxt_client


@pytest.fixture
def mock():
    with MockExchange(symbols=("BTC/USDT", "ETH/USDT"), seed=5, base_prices={"BTC/USDT": 100.0}) as exchange:
        yield exchange


@pytest.fixture
def client(mock: MockExchange):
    return make_ccxt_client(mock)


# ---- market data ------------------------------------------------------------------------------------

def test_markets_time_and_only_spot_endpoints(mock: MockExchange, client) -> None:
    markets = client.load_markets()
    assert sorted(markets) == ["BTC/USDT", "ETH/USDT"]
    assert markets["BTC/USDT"]["spot"] and markets["BTC/USDT"]["precision"]["amount"] == pytest.approx(1e-5)
    assert client.fetch_time() == DEFAULT_START_MS
    assert {r.path for r in mock.requests} == {"/api/v3/exchangeInfo", "/api/v3/time"}


def test_klines_are_deterministic_per_seed_and_follow_the_mock_clock(mock: MockExchange, client) -> None:
    candles = client.fetch_ohlcv("BTC/USDT", "1m", limit=5)
    assert [c[0] for c in candles] == [DEFAULT_START_MS - 60_000 * i for i in range(4, -1, -1)]
    assert all(c[3] <= min(c[1], c[4]) and c[2] >= max(c[1], c[4]) for c in candles)
    with MockExchange(symbols=("BTC/USDT", "ETH/USDT"), seed=5, base_prices={"BTC/USDT": 100.0}) as twin:
        assert make_ccxt_client(twin).fetch_ohlcv("BTC/USDT", "1m", limit=5) == candles
    with MockExchange(symbols=("BTC/USDT",), seed=6, base_prices={"BTC/USDT": 100.0}) as other:
        assert make_ccxt_client(other).fetch_ohlcv("BTC/USDT", "1m", limit=5) != candles
    mock.advance(180_000)
    later = client.fetch_ohlcv("BTC/USDT", "1m", since=DEFAULT_START_MS)
    assert [c[0] for c in later] == [DEFAULT_START_MS + 60_000 * i for i in range(4)]
    assert later[0][1:] != candles[-1][1:]  # the candle that was open has closed with all its minutes


def test_ticker_and_order_book(mock: MockExchange, client) -> None:
    ticker = client.fetch_ticker("BTC/USDT")
    book = client.fetch_order_book("BTC/USDT", 5)
    assert ticker["timestamp"] == DEFAULT_START_MS and ticker["last"] == mock.last_price("BTC/USDT")
    assert ticker["bid"] < ticker["last"] < ticker["ask"]
    assert len(book["bids"]) == len(book["asks"]) == 5
    assert [p for p, _ in book["bids"]] == sorted((p for p, _ in book["bids"]), reverse=True)
    assert book["bids"][0][0] == ticker["bid"] and book["asks"][0][0] == ticker["ask"]
    with pytest.raises(ccxt.BadSymbol):
        client.fetch_ticker("DOGE/USDT")


# ---- orders -------------------------------------------------------------------------------------------

def test_market_order_fills_at_the_set_price_and_moves_balances(mock: MockExchange, client) -> None:
    mock.set_fill_price("BTC/USDT", 101.0)
    order = client.create_order("BTC/USDT", "market", "buy", 2.0, params={"newClientOrderId": "dec-1"})
    assert (order["status"], order["filled"], order["average"], order["clientOrderId"]) == ("closed", 2.0, 101.0,
                                                                                           "dec-1")
    assert order["fee"]["cost"] == pytest.approx(2.0 * 101.0 * mock.fee_rate)
    (received,) = mock.orders_received
    assert (received["newClientOrderId"], received["type"], received["side"], received["quantity"]) == (
        "dec-1", "MARKET", "BUY", "2")
    balance = client.fetch_balance()
    assert balance["BTC"]["free"] == 2.0
    assert balance["USDT"]["free"] == pytest.approx(1_000_000 - 202.0 - 0.202)


def test_limit_order_rests_can_be_queried_filled_and_cancelled(mock: MockExchange, client) -> None:
    order = client.create_order("ETH/USDT", "limit", "sell", 1.5, 999.0, params={"newClientOrderId": "dec-2"})
    assert order["status"] == "open" and order["filled"] == 0
    assert [o["id"] for o in client.fetch_open_orders("ETH/USDT")] == [order["id"]]
    mock.fill_order(int(order["id"]), quantity=0.5)
    assert client.fetch_order(order["id"], "ETH/USDT")["filled"] == 0.5
    assert client.cancel_order(order["id"], "ETH/USDT")["status"] == "canceled"
    assert client.fetch_open_orders("ETH/USDT") == []
    with pytest.raises(ccxt.OrderNotFound):
        client.cancel_order(order["id"], "ETH/USDT")


def test_duplicate_client_order_id_is_refused_and_never_fills_twice(mock: MockExchange, client) -> None:
    client.create_order("BTC/USDT", "market", "buy", 1.0, params={"newClientOrderId": "dec-3"})
    with pytest.raises(ccxt.InvalidOrder, match="Duplicate order sent"):
        client.create_order("BTC/USDT", "market", "buy", 1.0, params={"newClientOrderId": "dec-3"})
    assert len(mock.orders_received) == 1 and client.fetch_balance()["BTC"]["free"] == 1.0


def test_unknown_order_and_injected_rejection(mock: MockExchange, client) -> None:
    with pytest.raises(ccxt.OrderNotFound):
        client.fetch_order("424242", "BTC/USDT")
    mock.fail_next_order(-2010, "Account has insufficient balance for requested action.")
    with pytest.raises(ccxt.InsufficientFunds):
        client.create_order("BTC/USDT", "market", "buy", 1.0)
    assert mock.orders_received == []
    assert client.create_order("BTC/USDT", "market", "buy", 1.0)["status"] == "closed"  # only the next one fails


def test_private_calls_need_an_api_key(mock: MockExchange) -> None:
    assert mock.handle("GET", "/api/v3/time", {}, None) == {"serverTime": DEFAULT_START_MS}
    with pytest.raises(Exception, match="API-key"):
        mock.handle("GET", "/api/v3/account", {}, None)
    with pytest.raises(Exception, match="not mocked"):
        mock.handle("GET", "/fapi/v1/exchangeInfo", {}, None)
