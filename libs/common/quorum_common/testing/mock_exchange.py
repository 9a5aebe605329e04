"""A local mock of the Binance spot REST API, for tests that drive a real ``ccxt.binance`` client.

Usage::

    from quorum_common.testing.mock_exchange import MockExchange, make_ccxt_client

    with MockExchange(symbols=("BTC/USDT",), seed=7) as mock:
        client = make_ccxt_client(mock)                # a ccxt.binance pointed at the mock
        client.fetch_ohlcv("BTC/USDT", "1m", limit=5)  # market data: klines, ticker, depth, time
        order = client.create_order("BTC/USDT", "market", "buy", 0.5, params={"newClientOrderId": "c-1"})
        assert order["status"] == "closed" and mock.orders_received[0]["newClientOrderId"] == "c-1"
        mock.set_fill_price("BTC/USDT", 101.0)          # where the next MARKET orders fill
        mock.fill_order(mock.orders_received[-1]["orderId"])  # fill a resting LIMIT order by hand
        mock.fail_next_order(-2010, "Account has insufficient balance")  # the next order is refused

Market data (``/api/v3/exchangeInfo``, ``klines``, ``ticker/24hr``, ``ticker/bookTicker``, ``depth``,
``time``) is deterministic: a function of the seed, the symbol and the mock's own clock
(``mock.now_ms``, moved only by :meth:`MockExchange.advance`), never the wall clock.

Orders (``POST/GET/DELETE /api/v3/order``, ``GET /api/v3/openOrders``, ``GET /api/v3/account``):
MARKET orders fill at once at the symbol's fill price (the last price unless set); LIMIT orders rest
as ``NEW`` until :meth:`MockExchange.fill_order` or a cancel. A second order with a
``newClientOrderId`` already used is refused (code -2010, ``Duplicate order sent.``). Every request
is kept in ``mock.requests``; every accepted order request (with its assigned ``orderId``) in
``mock.orders_received``. Signatures are not verified; private calls need the ``X-MBX-APIKEY`` header.
"""

from __future__ import annotations

import json
import math
import random
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

INTERVAL_MS = {"1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000, "1h": 3_600_000,
               "2h": 7_200_000, "4h": 14_400_000, "1d": 86_400_000, "1w": 604_800_000}
DEFAULT_START_MS = 1_700_000_040_000  # 2023-11-14 22:14 UTC, a whole minute
_API = "/api/v3/"
_SAMPLES = 6


@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request that reached the mock."""

    method: str
    path: str
    params: dict[str, str]
    api_key: str | None


@dataclass
class _Order:
    symbol: str
    order_id: int
    client_order_id: str
    side: str
    type: str
    quantity: float
    price: float | None
    time_in_force: str | None
    time_ms: int
    status: str = "NEW"
    executed: float = 0.0
    quote: float = 0.0
    fills: list[dict[str, Any]] = field(default_factory=list)


class ExchangeError(Exception):
    """An error answered the Binance way: HTTP status and a JSON body ``{code, msg}``."""

    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg = status, code, msg


def _venue_symbol(symbol: str) -> str:
    return symbol.replace("/", "")


def _fmt(x: float) -> str:
    return f"{x:.8f}"


class MockExchange:
    """An in-memory Binance spot venue served on ``127.0.0.1`` (port 0: a free port) from a thread."""

    def __init__(self, symbols: tuple[str, ...] = ("BTC/USDT", "ETH/USDT"), seed: int = 0,
                 start_ms: int = DEFAULT_START_MS, base_prices: dict[str, float] | None = None,
                 balances: dict[str, float] | None = None, fee_rate: float = 0.001, book_levels: int = 100) -> None:
        for s in symbols:
            if s.count("/") != 1:
                raise ValueError(f"symbol {s!r} must look like BASE/QUOTE")
        self.symbols = symbols
        self.seed = seed
        self.now_ms = start_ms
        self.fee_rate = fee_rate
        self.book_levels = book_levels
        rng = random.Random(seed)
        self.base_prices = {s: (base_prices or {}).get(s, round(rng.uniform(50, 500), 2)) for s in symbols}
        self.balances: dict[str, float] = dict(balances or {"USDT": 1_000_000.0})
        self.requests: list[RecordedRequest] = []
        self.orders_received: list[dict[str, Any]] = []
        self._orders: dict[int, _Order] = {}
        self._fill_prices: dict[str, float] = {}
        self._fail_next: list[tuple[int, str]] = []
        self._next_order_id = 1
        self._trade_id = 1
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle -------------------------------------------------------------------------------
    def start(self) -> MockExchange:
        """Serve on a free port of 127.0.0.1 from a daemon thread."""
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="mock-exchange", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> MockExchange:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:40123``."""
        if self._server is None:
            raise RuntimeError("mock exchange is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # ---- deterministic market ------------------------------------------------------------------
    def advance(self, ms: int) -> None:
        """Move the mock's clock forward (candles close, tickers and books change)."""
        if ms < 0:
            raise ValueError("the clock only moves forward")
        self.now_ms += ms

    def price_at(self, symbol: str, t_ms: int) -> float:
        """The mock's reference price of ``symbol`` at ``t_ms``: a seeded wave plus seeded noise per second."""
        second = t_ms // 1000
        noise = random.Random(f"{self.seed}:{symbol}:{second}").gauss(0.0, 0.002)
        return round(self.base_prices[symbol] * (1 + 0.03 * math.sin(second / 2220.0) + noise), 2)

    def candle(self, symbol: str, interval: str, open_ms: int) -> list[Any]:
        """The Binance kline row of the candle opening at ``open_ms``: prices sampled at six points of the
        interval, up to the mock's clock (so a candle still open shows only what has happened yet)."""
        step = INTERVAL_MS[interval]
        samples = [open_ms + step * i // _SAMPLES for i in range(_SAMPLES + 1)]
        points = [self.price_at(symbol, t) for t in samples if t <= self.now_ms] or [self.price_at(symbol, open_ms)]
        volume = round(random.Random(f"{self.seed}:{symbol}:{interval}:{open_ms}:v").uniform(1, 100), 4)
        volume = round(volume * (len(points) - 1 or 1) / _SAMPLES, 4)
        return [open_ms, _fmt(points[0]), _fmt(max(points)), _fmt(min(points)), _fmt(points[-1]), _fmt(volume),
                open_ms + step - 1, _fmt(volume * points[-1]), len(points) * 10, _fmt(volume / 2),
                _fmt(volume * points[-1] / 2), "0"]

    def last_price(self, symbol: str) -> float:
        """The last trade price now."""
        return self.price_at(symbol, self.now_ms)

    def book(self, symbol: str, limit: int) -> tuple[list[list[str]], list[list[str]]]:
        """Bid and ask levels now (best first), sizes seeded per second."""
        mid = self.last_price(symbol)
        tick = max(0.01, round(mid * 0.0001, 2))
        rng = random.Random(f"{self.seed}:{symbol}:{self.now_ms // 1000}:book")
        n = min(limit, self.book_levels)
        bids = [[_fmt(round(mid - tick * (i + 1), 2)), _fmt(round(rng.uniform(0.1, 5), 4))] for i in range(n)]
        asks = [[_fmt(round(mid + tick * (i + 1), 2)), _fmt(round(rng.uniform(0.1, 5), 4))] for i in range(n)]
        return bids, asks

    # ---- order controls for tests ----------------------------------------------------------------
    def set_fill_price(self, symbol: str, price: float) -> None:
        """MARKET orders of ``symbol`` fill at ``price`` from now on (instead of the last price)."""
        self._fill_prices[symbol] = price

    def fail_next_order(self, code: int = -2010, msg: str = "Order rejected by the mock.") -> None:
        """Refuse the next create-order request with a Binance error."""
        self._fail_next.append((code, msg))

    def fill_order(self, order_id: int, quantity: float | None = None, price: float | None = None) -> dict[str, Any]:
        """Fill a resting order (all of what is left unless ``quantity``); return its state."""
        with self._lock:
            order = self._orders[order_id]
            if order.status not in ("NEW", "PARTIALLY_FILLED"):
                raise ValueError(f"order {order_id} is {order.status}")
            qty = order.quantity - order.executed if quantity is None else quantity
            self._fill(order, qty, price if price is not None else order.price or self.last_price(order.symbol))
            return self._order_json(order)

    def open_orders(self) -> list[dict[str, Any]]:
        """Orders still working (Binance JSON)."""
        return [self._order_json(o) for o in self._orders.values() if o.status in ("NEW", "PARTIALLY_FILLED")]

    # ---- request handling ------------------------------------------------------------------------
    def handle(self, method: str, path: str, params: dict[str, str], api_key: str | None) -> Any:
        """Answer one request (JSON-able) or raise :class:`ExchangeError`."""
        with self._lock:
            self.requests.append(RecordedRequest(method, path, dict(params), api_key))
            if not path.startswith(_API):
                raise ExchangeError(404, -1000, f"not mocked: {path}")
            endpoint = path[len(_API):]
            public = {"ping": self._ping, "time": self._time, "exchangeInfo": self._exchange_info,
                      "klines": self._klines, "ticker/24hr": self._ticker_24hr,
                      "ticker/bookTicker": self._book_ticker, "depth": self._depth}
            if method == "GET" and endpoint in public:
                return public[endpoint](params)
            private = {("POST", "order"): self._create_order, ("GET", "order"): self._query_order,
                       ("DELETE", "order"): self._cancel_order, ("GET", "openOrders"): self._open_orders,
                       ("GET", "account"): self._account}
            if (method, endpoint) not in private:
                raise ExchangeError(404, -1000, f"not mocked: {method} {path}")
            if not api_key:
                raise ExchangeError(401, -2014, "API-key format invalid.")
            return private[(method, endpoint)](params)

    def _market(self, params: dict[str, str]) -> str:
        venue = params.get("symbol")
        for s in self.symbols:
            if _venue_symbol(s) == venue:
                return s
        raise ExchangeError(400, -1121, "Invalid symbol.")

    def _ping(self, _params: dict[str, str]) -> dict[str, Any]:
        return {}

    def _time(self, _params: dict[str, str]) -> dict[str, Any]:
        return {"serverTime": self.now_ms}

    def _exchange_info(self, _params: dict[str, str]) -> dict[str, Any]:
        def info(symbol: str) -> dict[str, Any]:
            base, quote = symbol.split("/")
            return {
                "symbol": _venue_symbol(symbol), "status": "TRADING", "baseAsset": base, "baseAssetPrecision": 8,
                "quoteAsset": quote, "quotePrecision": 8, "quoteAssetPrecision": 8, "baseCommissionPrecision": 8,
                "quoteCommissionPrecision": 8, "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET"],
                "icebergAllowed": True, "ocoAllowed": True, "quoteOrderQtyMarketAllowed": True,
                "allowTrailingStop": False, "cancelReplaceAllowed": True, "isSpotTradingAllowed": True,
                "isMarginTradingAllowed": False,
                "filters": [
                    {"filterType": "PRICE_FILTER", "minPrice": "0.01000000", "maxPrice": "1000000.00000000",
                     "tickSize": "0.01000000"},
                    {"filterType": "LOT_SIZE", "minQty": "0.00001000", "maxQty": "9000.00000000",
                     "stepSize": "0.00001000"},
                    {"filterType": "NOTIONAL", "minNotional": "5.00000000", "applyMinToMarket": True,
                     "maxNotional": "9000000.00000000", "applyMaxToMarket": False, "avgPriceMins": 5},
                ],
                "permissions": [], "permissionSets": [["SPOT"]], "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
                "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
            }

        return {"timezone": "UTC", "serverTime": self.now_ms, "rateLimits": [], "exchangeFilters": [],
                "symbols": [info(s) for s in self.symbols]}

    def _klines(self, params: dict[str, str]) -> list[list[Any]]:
        symbol = self._market(params)
        interval = params.get("interval", "1m")
        if interval not in INTERVAL_MS:
            raise ExchangeError(400, -1120, "Invalid interval.")
        step = INTERVAL_MS[interval]
        limit = min(int(params.get("limit", 500)), 1000)
        current = self.now_ms - self.now_ms % step
        end = min(int(params["endTime"]), self.now_ms) if "endTime" in params else self.now_ms
        last = end - end % step
        if "startTime" in params:
            first = -(-int(params["startTime"]) // step) * step
            opens = list(range(first, min(last, current) + 1, step))[:limit]
        else:
            opens = list(range(last - (limit - 1) * step, last + 1, step))
        return [self.candle(symbol, interval, t) for t in opens]

    def _ticker_json(self, symbol: str) -> dict[str, Any]:
        bids, asks = self.book(symbol, 1)
        last = self.last_price(symbol)
        opened = self.price_at(symbol, self.now_ms - 86_400_000)
        return {
            "symbol": _venue_symbol(symbol), "priceChange": _fmt(last - opened),
            "priceChangePercent": f"{(last / opened - 1) * 100:.3f}", "weightedAvgPrice": _fmt(last),
            "prevClosePrice": _fmt(opened), "lastPrice": _fmt(last), "lastQty": "0.50000000",
            "bidPrice": bids[0][0], "bidQty": bids[0][1], "askPrice": asks[0][0], "askQty": asks[0][1],
            "openPrice": _fmt(opened), "highPrice": _fmt(max(last, opened)), "lowPrice": _fmt(min(last, opened)),
            "volume": "1000.00000000", "quoteVolume": _fmt(1000 * last), "openTime": self.now_ms - 86_400_000,
            "closeTime": self.now_ms, "firstId": 1, "lastId": 1000, "count": 1000,
        }

    def _ticker_24hr(self, params: dict[str, str]) -> Any:
        if "symbol" in params:
            return self._ticker_json(self._market(params))
        return [self._ticker_json(s) for s in self.symbols]

    def _book_ticker(self, params: dict[str, str]) -> dict[str, Any]:
        t = self._ticker_json(self._market(params))
        return {k: t[k] for k in ("symbol", "bidPrice", "bidQty", "askPrice", "askQty")}

    def _depth(self, params: dict[str, str]) -> dict[str, Any]:
        symbol = self._market(params)
        bids, asks = self.book(symbol, int(params.get("limit", 100)))
        return {"lastUpdateId": self.now_ms // 1000, "bids": bids, "asks": asks}

    # ---- orders ------------------------------------------------------------------------------------
    def _create_order(self, params: dict[str, str]) -> dict[str, Any]:
        symbol = self._market(params)
        if self._fail_next:
            code, msg = self._fail_next.pop(0)
            raise ExchangeError(400, code, msg)
        kind, side = params.get("type", ""), params.get("side", "")
        if kind not in ("MARKET", "LIMIT") or side not in ("BUY", "SELL"):
            raise ExchangeError(400, -1116, f"Invalid orderType or side: {kind} {side}.")
        try:
            qty = float(params["quantity"])
            price = float(params["price"]) if kind == "LIMIT" else None
        except (KeyError, ValueError):
            raise ExchangeError(400, -1102, "Mandatory parameter 'quantity' (or 'price') was not sent.") from None
        if qty <= 0 or (price is not None and price <= 0):
            raise ExchangeError(400, -1013, "Filter failure: quantity or price not positive.")
        client_id = params.get("newClientOrderId") or f"mock-{self._next_order_id}"
        if any(o.client_order_id == client_id for o in self._orders.values()):
            raise ExchangeError(400, -2010, "Duplicate order sent.")
        order = _Order(symbol, self._next_order_id, client_id, side, kind, qty, price,
                       params.get("timeInForce"), self.now_ms)
        self._next_order_id += 1
        self._orders[order.order_id] = order
        self.orders_received.append({**params, "orderId": order.order_id})
        if kind == "MARKET":
            self._fill(order, qty, self._fill_prices.get(symbol, self.last_price(symbol)))
        return self._order_json(order, with_fills=True)

    def _fill(self, order: _Order, qty: float, price: float) -> None:
        qty = min(qty, order.quantity - order.executed)
        base, quote = order.symbol.split("/")
        fee = qty * price * self.fee_rate
        sign = 1 if order.side == "BUY" else -1
        self.balances[base] = self.balances.get(base, 0.0) + sign * qty
        self.balances[quote] = self.balances.get(quote, 0.0) - sign * qty * price - fee
        order.executed += qty
        order.quote += qty * price
        order.fills.append({"price": _fmt(price), "qty": _fmt(qty), "commission": _fmt(fee),
                            "commissionAsset": quote, "tradeId": self._trade_id})
        self._trade_id += 1
        order.status = "FILLED" if order.executed >= order.quantity - 1e-12 else "PARTIALLY_FILLED"

    def _find(self, params: dict[str, str]) -> _Order:
        symbol = self._market(params)
        for o in self._orders.values():
            if o.symbol == symbol and (str(o.order_id) == params.get("orderId")
                                       or o.client_order_id == params.get("origClientOrderId")):
                return o
        raise ExchangeError(400, -2013, "Order does not exist.")

    def _query_order(self, params: dict[str, str]) -> dict[str, Any]:
        return self._order_json(self._find(params))

    def _cancel_order(self, params: dict[str, str]) -> dict[str, Any]:
        order = self._find(params)
        if order.status not in ("NEW", "PARTIALLY_FILLED"):
            raise ExchangeError(400, -2011, "Unknown order sent.")
        order.status = "CANCELED"
        return self._order_json(order)

    def _open_orders(self, params: dict[str, str]) -> list[dict[str, Any]]:
        symbol = self._market(params) if "symbol" in params else None
        return [self._order_json(o) for o in self._orders.values()
                if o.status in ("NEW", "PARTIALLY_FILLED") and symbol in (None, o.symbol)]

    def _account(self, _params: dict[str, str]) -> dict[str, Any]:
        return {"makerCommission": 10, "takerCommission": 10, "canTrade": True, "canWithdraw": False,
                "canDeposit": False, "updateTime": self.now_ms, "accountType": "SPOT", "permissions": ["SPOT"],
                "balances": [{"asset": a, "free": _fmt(v), "locked": "0.00000000"}
                             for a, v in sorted(self.balances.items())]}

    def _order_json(self, o: _Order, with_fills: bool = False) -> dict[str, Any]:
        out = {"symbol": _venue_symbol(o.symbol), "orderId": o.order_id, "orderListId": -1,
               "clientOrderId": o.client_order_id, "price": _fmt(o.price or 0.0), "origQty": _fmt(o.quantity),
               "executedQty": _fmt(o.executed), "cummulativeQuoteQty": _fmt(o.quote), "status": o.status,
               "timeInForce": o.time_in_force or "GTC", "type": o.type, "side": o.side, "stopPrice": "0.00000000",
               "time": o.time_ms, "updateTime": self.now_ms, "transactTime": o.time_ms, "workingTime": o.time_ms,
               "isWorking": True, "origQuoteOrderQty": "0.00000000", "selfTradePreventionMode": "NONE"}
        if with_fills:
            out["fills"] = list(o.fills)
        return out


def _handler_for(mock: MockExchange) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: object) -> None:  # keep test output quiet
            pass

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            params = dict(parse_qsl(parts.query))
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                params.update(parse_qsl(self.rfile.read(length).decode()))
            params.pop("signature", None)
            try:
                status, body = 200, mock.handle(self.command, parts.path, params, self.headers.get("X-MBX-APIKEY"))
            except ExchangeError as exc:
                status, body = exc.status, {"code": exc.code, "msg": exc.msg}
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = do_PUT = _serve

    return Handler


def make_ccxt_client(mock: MockExchange, api_key: str = "mock-key", secret: str = "mock-secret") -> Any:
    """A ``ccxt.binance`` whose every REST host is the mock; spot only, no currency or time-sync calls."""
    import ccxt

    return point_ccxt_at(ccxt.binance({
        "apiKey": api_key,
        "secret": secret,
        "enableRateLimit": False,
        "timeout": 5_000,
        "options": {"defaultType": "spot", "fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False,
                    "adjustForTimeDifference": False, "fetchMargins": False},
    }), mock.url)


def point_ccxt_at(client: Any, base_url: str) -> Any:
    """Replace the scheme and host of every REST URL of a ccxt client with ``base_url``; return the client."""

    def rewrite(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: rewrite(v) for k, v in value.items()}
        if isinstance(value, str):
            return re.sub(r"^https?://[^/]+", base_url.rstrip("/"), value)
        return value

    client.urls["api"] = rewrite(client.urls["api"])
    return client
