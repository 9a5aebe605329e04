"""What the engine needs of a venue, and the events a venue hands back.

A venue is synchronous and reads time only from its arguments (``ts`` and bars' ``ts_event``), so
the paper exchange is deterministic and a live venue stamps its events with event time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Order:
    """An order as the venue sees it (taken from a ``SubmitOrder`` record)."""

    client_order_id: str
    symbol: str
    side: str  # BUY | SELL
    quantity: float
    order_type: str  # MARKET | LIMIT
    limit_price: float | None
    time_in_force: str  # DAY | GTC | IOC | FOK
    asset_class: str

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> Order:
        """The venue order of a ``SubmitOrder`` record."""
        return cls(rec["client_order_id"], rec["symbol"], rec["side"], float(rec["quantity"]), rec["order_type"],
                   rec["limit_price"], rec["time_in_force"], rec["asset_class"])

    @property
    def sign(self) -> int:
        """+1 for BUY, -1 for SELL."""
        return 1 if self.side == "BUY" else -1


@dataclass(frozen=True)
class VenueAck:
    """The venue's answer to a submit."""

    accepted: bool
    venue_order_id: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Fill:
    """One execution of an order at the venue."""

    client_order_id: str
    fill_id: str
    ts: int
    quantity: float
    price: float
    fee: float
    liquidity: str  # MAKER | TAKER
    final: bool = False  # true when this fill completes the order
    venue_order_id: str | None = None
    arrival_price: float | None = None


@dataclass(frozen=True)
class OrderClosed:
    """The venue ended an order without (further) fills: ``CANCELLED`` or ``EXPIRED``."""

    client_order_id: str
    ts: int
    status: str
    reason: str


VenueEvent = Fill | OrderClosed


def order_problem(order: Order) -> str | None:
    """Why the venue cannot accept ``order``, or ``None`` when it can."""
    if not (math.isfinite(order.quantity) and order.quantity > 0):
        return f"quantity must be finite and > 0, got {order.quantity}"
    if order.order_type == "LIMIT":
        lp = order.limit_price
        if lp is None or not (math.isfinite(lp) and lp > 0):
            return f"LIMIT order needs a finite limit_price > 0, got {lp}"
    return None


class Venue(Protocol):
    """A place that executes orders: the paper exchange or a live exchange through ccxt."""

    name: str

    def submit(self, order: Order, ts: int) -> VenueAck:
        """Send ``order`` at event time ``ts``."""

    def cancel(self, client_order_id: str, ts: int) -> bool:
        """Cancel a working order; true when it was working and is now cancelled."""

    def adopt(self, order: Order, filled: float, avg_price: float | None, fills: int, ts: int) -> VenueAck:
        """Track again an order an earlier run of the service sent, which its reports left working at event time
        ``ts`` with ``filled`` units at ``avg_price`` in ``fills`` fills; refused when the venue has no such order."""

    def on_bar(self, bar: dict[str, Any]) -> list[VenueEvent]:
        """Advance the venue with a closed bar (``BarClosed`` record); return the fills and closes it caused."""
