"""A live venue through ccxt: orders go out with their client order id; fills come back by polling.

Polling happens on every bar of the order's symbol (the engine's only notion of time), and each
fill is stamped with that bar's ``ts_event``; the wall clock is never read. A fill's price is the
increment of the venue's cumulative average price, and its fee the increment of the order's fee when
the venue reports one (Binance's order query does not; then ``fee_model`` prices the fill).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ccxt

from quorum_execution.venue import Fill, Order, OrderClosed, VenueAck, VenueEvent, order_problem

log = logging.getLogger(__name__)

_EPS = 1e-12
_CLOSED = {"canceled": "CANCELLED", "cancelled": "CANCELLED", "expired": "EXPIRED", "rejected": "REJECTED"}


@dataclass
class _LiveOrder:
    order: Order
    venue_order_id: str
    market: str
    filled: float = 0.0
    notional: float = 0.0
    fee: float = 0.0
    fills: int = 0


class CcxtVenue:
    """Sends orders to a ccxt exchange instance and turns its order states into fills and closes."""

    def __init__(self, exchange: Any, name: str | None = None, markets: dict[str, str] | None = None,
                 fee_model: Callable[[str, float], float] | None = None) -> None:
        self.exchange = exchange
        self.fee_model = fee_model
        self.name = name or str(exchange.id).upper()
        self._markets = markets or {}
        self._open: dict[str, _LiveOrder] = {}

    def market(self, symbol: str) -> str:
        """The exchange's market of a desk symbol (``BTC-USD`` → ``BTC/USD`` unless mapped)."""
        return self._markets.get(symbol, symbol.replace("-", "/"))

    @property
    def working(self) -> list[str]:
        """Client order ids of the orders still open at the exchange (as last seen)."""
        return list(self._open)

    def submit(self, order: Order, ts: int) -> VenueAck:
        """``create_order`` with ``newClientOrderId`` = the client order id.

        When the venue refuses the id as a duplicate, or the request failed on the network (the order may
        or may not be there), the order the venue has under that id is adopted (tracked and polled)
        instead of being sent again; when it has none, the submit is refused.
        """
        problem = order_problem(order)
        if problem is not None:
            return VenueAck(False, reason=problem)
        market = self.market(order.symbol)
        price = order.limit_price if order.order_type == "LIMIT" else None
        try:
            res = self.exchange.create_order(market, order.order_type.lower(), order.side.lower(), order.quantity,
                                             price, params={"newClientOrderId": order.client_order_id})
        except ccxt.BaseError as exc:
            ambiguous = isinstance(exc, ccxt.NetworkError) or "duplicate" in str(exc).lower()
            res = self._existing(order.client_order_id, market) if ambiguous else None
            if res is None:
                return VenueAck(False, reason=f"{type(exc).__name__}: {exc}")
        vid = str(res["id"])
        self._open[order.client_order_id] = _LiveOrder(order, vid, market)
        return VenueAck(True, vid)

    def _existing(self, client_order_id: str, market: str) -> dict[str, Any] | None:
        """The venue's order with ``client_order_id`` (sent by an earlier run that crashed before journaling)."""
        try:
            found = self.exchange.fetch_order(None, market, params={"clientOrderId": client_order_id})
        except ccxt.BaseError:
            return None
        return found if found.get("clientOrderId") == client_order_id else None

    def adopt(self, order: Order, filled: float, avg_price: float | None, fills: int, ts: int) -> VenueAck:
        """Poll again an order an earlier run sent: the exchange's order with the client order id, whose fills since
        ``filled`` units are reported from the next bar on; refused when the exchange has none.

        The fee already paid is taken pro rata from the exchange's cumulative fee (exact when nothing filled since).
        """
        market = self.market(order.symbol)
        found = self._existing(order.client_order_id, market)
        if found is None:
            return VenueAck(False, reason=f"{self.name} has no order {order.client_order_id}")
        live = _LiveOrder(order, str(found["id"]), market, filled=filled, notional=(avg_price or 0.0) * filled,
                          fills=fills)
        venue_fee = (found.get("fee") or {}).get("cost")
        venue_filled = float(found.get("filled") or 0.0)
        if venue_fee is not None and venue_filled > _EPS:
            live.fee = float(venue_fee) * min(1.0, filled / venue_filled)
        self._open[order.client_order_id] = live
        return VenueAck(True, live.venue_order_id)

    def cancel(self, client_order_id: str, ts: int) -> bool:
        """``cancel_order``; false when the order is not open or the exchange refuses (e.g. already filled)."""
        live = self._open.get(client_order_id)
        if live is None:
            return False
        try:
            self.exchange.cancel_order(live.venue_order_id, live.market)
        except ccxt.BaseError as exc:
            log.warning("cancel refused", extra={"client_order_id": client_order_id, "error": str(exc)})
            return False
        del self._open[client_order_id]
        return True

    def on_bar(self, bar: dict[str, Any]) -> list[VenueEvent]:
        """Poll the open orders of the bar's symbol; events are stamped with the bar's time."""
        ts = int(bar["ts_event"])
        events: list[VenueEvent] = []
        for live in [o for o in self._open.values() if o.order.symbol == bar["symbol"]]:
            try:
                state = self.exchange.fetch_order(live.venue_order_id, live.market)
            except ccxt.BaseError as exc:
                log.warning("fetch_order failed", extra={"client_order_id": live.order.client_order_id,
                                                         "error": str(exc)})
                continue
            events += self._events(live, state, ts)
        return events

    def _events(self, live: _LiveOrder, state: dict[str, Any], ts: int) -> list[VenueEvent]:
        cid = live.order.client_order_id
        filled = float(state.get("filled") or 0.0)
        status = state.get("status")
        events: list[VenueEvent] = []
        final = False
        if filled > live.filled + _EPS:
            fill = self._fill(live, state, filled, ts)
            final = fill.final
            events.append(fill)
        if final:
            del self._open[cid]
        elif status in _CLOSED:
            del self._open[cid]
            events.append(OrderClosed(cid, ts, _CLOSED[status], f"venue status {status}"))
        return events

    def _fill(self, live: _LiveOrder, state: dict[str, Any], filled: float, ts: int) -> Fill:
        quantity = filled - live.filled
        average = float(state.get("average") or state.get("price") or 0.0)
        price = (average * filled - live.notional) / quantity
        venue_fee = (state.get("fee") or {}).get("cost")
        final = state.get("status") == "closed" or filled >= live.order.quantity * (1 - 1e-9)
        trades = state.get("trades") or []
        liquidity = str(trades[-1].get("takerOrMaker") or "") if trades else ""
        if liquidity.upper() not in ("MAKER", "TAKER"):
            liquidity = "TAKER" if live.order.order_type == "MARKET" else "MAKER"
        live.fills += 1
        if venue_fee is not None:
            fee, live.fee = float(venue_fee) - live.fee, float(venue_fee)
        else:
            fee = self.fee_model(live.order.asset_class, quantity * price) if self.fee_model else 0.0
        live.filled, live.notional = filled, average * filled
        return Fill(live.order.client_order_id, f"{live.venue_order_id}-{live.fills}", ts, quantity, price, fee,
                    liquidity.upper(), final, live.venue_order_id)
