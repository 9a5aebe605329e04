"""The paper exchange: fills orders at the next bar of their symbol, with slippage, fees and participation.

Rules (deterministic; time comes only from order and bar timestamps):

- An order accepted at ``ts`` can fill only on a bar of its symbol with ``ts_event > ts`` (the next bar).
- The base price is the bar's open (its close when the open is unusable). A MARKET order fills at the
  base price moved against it by the :class:`~quorum_execution.costs.CostModel` slippage (TAKER).
- A LIMIT order that is marketable at the open fills like a market order but never worse than its limit
  (TAKER); otherwise it fills at its limit only when the bar trades through it (``low < limit`` for a
  buy, ``high > limit`` for a sell; MAKER); otherwise it keeps working.
- Participation cap: the fills of one bar take at most ``max_participation`` of the bar's volume per
  symbol (no cap when the volume is unknown, i.e. 0); the remainder keeps working on later bars.
- Time in force: IOC fills what it can on its first bar and the rest expires; FOK fills completely
  on its first bar or expires; DAY expires on the first bar of a later UTC date than its first bar;
  GTC works until filled or cancelled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import Any

from quorum_common.event_dates import utc_date

from quorum_execution.costs import CostModel
from quorum_execution.venue import Fill, Order, OrderClosed, VenueAck, VenueEvent, order_problem

_EPS = 1e-9


@dataclass
class _Working:
    order: Order
    accepted_ts: int
    remaining: float
    venue_order_id: str
    session: date | None = None
    fills: int = 0


class PaperExchange:
    """A simulated venue with the rules of the module docstring."""

    def __init__(self, costs: CostModel, max_participation: float = 1.0, name: str = "SIM") -> None:
        if not 0 < max_participation <= 1:
            raise ValueError(f"max_participation must be in (0, 1], got {max_participation}")
        self.name = name
        self.costs = costs
        self.max_participation = max_participation
        self.submitted: list[Order] = []
        """Every order that reached the venue, in order (an audit trail for tests and reports)."""
        self._working: dict[str, _Working] = {}

    @property
    def working(self) -> list[str]:
        """Client order ids of the working orders, in submission order."""
        return list(self._working)

    def submit(self, order: Order, ts: int) -> VenueAck:
        """Accept ``order`` at ``ts`` (it fills from the next bar on), or refuse it with a reason."""
        problem = order_problem(order)
        if problem is None and order.client_order_id in self._working:
            problem = "duplicate client order id"
        if problem is not None:
            return VenueAck(False, reason=problem)
        self.submitted.append(order)
        vid = f"{self.name}-{order.client_order_id}"
        self._working[order.client_order_id] = _Working(order, ts, order.quantity, vid)
        return VenueAck(True, vid)

    def adopt(self, order: Order, filled: float, avg_price: float | None, fills: int, ts: int) -> VenueAck:
        """Put an order an earlier run left working back in the book (this venue's book lives in the service, so a
        restarted service rebuilds it from its reports): its remainder fills from the next bar after ``ts``. A DAY
        order that had fills keeps the session of its last one."""
        working = self._working.get(order.client_order_id)
        if working is not None:
            return VenueAck(True, working.venue_order_id)
        remaining = order.quantity - filled
        if remaining <= _EPS * order.quantity:
            return VenueAck(False, reason="nothing left to fill")
        vid = f"{self.name}-{order.client_order_id}"
        session = utc_date(ts) if fills else None
        self._working[order.client_order_id] = _Working(order, ts, remaining, vid, session, fills)
        return VenueAck(True, vid)

    def cancel(self, client_order_id: str, ts: int) -> bool:
        """Cancel a working order; false when it is not working (unknown or already done)."""
        return self._working.pop(client_order_id, None) is not None

    def on_bar(self, bar: dict[str, Any]) -> list[VenueEvent]:
        """Fill (or expire) the working orders of the bar's symbol that were accepted before the bar."""
        ts = int(bar["ts_event"])
        due = [w for w in self._working.values() if w.order.symbol == bar["symbol"] and w.accepted_ts < ts]
        volume = float(bar["volume"])
        capacity = self.max_participation * volume if volume > 0 else math.inf
        day = utc_date(ts)
        events: list[VenueEvent] = []
        for w in due:
            if w.order.time_in_force == "DAY" and w.session is not None and day > w.session:
                events.append(self._close(w, ts, "EXPIRED", "DAY order not filled by the end of its session"))
                continue
            w.session = w.session or day
            fill = self._fill(w, bar, min(w.remaining, capacity))
            if fill is not None:
                capacity -= fill.quantity
                events.append(fill)
            if w.remaining > _EPS * w.order.quantity and w.order.time_in_force in ("IOC", "FOK"):
                events.append(self._close(w, ts, "EXPIRED", f"{w.order.time_in_force} remainder not fillable"))
        return events

    def _fill(self, w: _Working, bar: dict[str, Any], quantity: float) -> Fill | None:
        order = w.order
        if order.time_in_force == "FOK" and quantity < w.remaining * (1 - _EPS):
            return None
        if quantity <= _EPS * order.quantity:
            return None
        base = float(bar["open"]) if math.isfinite(bar["open"]) and bar["open"] > 0 else float(bar["close"])
        priced = self._price(order, bar, base, quantity)
        if priced is None:
            return None
        price, liquidity = priced
        done = quantity >= w.remaining * (1 - _EPS)
        quantity = w.remaining if done else quantity
        w.remaining = 0.0 if done else w.remaining - quantity
        w.fills += 1
        if done:
            del self._working[order.client_order_id]
        ts = int(bar["ts_event"])
        return Fill(order.client_order_id, f"{w.venue_order_id}-{w.fills}", ts, quantity, price,
                    self.costs.fee(order.asset_class, quantity * price), liquidity, done, w.venue_order_id, base)

    def _price(self, order: Order, bar: dict[str, Any], base: float, quantity: float) -> tuple[float, str] | None:
        taker = self.costs.fill_price(order.sign, order.asset_class, quantity, base, float(bar["volume"]))
        if order.order_type == "MARKET":
            return taker, "TAKER"
        limit = float(order.limit_price or 0.0)
        if order.sign * (base - limit) <= 0:  # marketable at the open
            return (limit if order.sign * (taker - limit) > 0 else taker), "TAKER"
        through = bar["low"] < limit if order.side == "BUY" else bar["high"] > limit
        return (limit, "MAKER") if through else None

    def _close(self, w: _Working, ts: int, status: str, reason: str) -> OrderClosed:
        del self._working[w.order.client_order_id]
        return OrderClosed(w.order.client_order_id, ts, status, reason)
