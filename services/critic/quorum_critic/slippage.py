"""Execution quality: per-fill slippage against the decision price, per-order and window statistics.

Slippage in basis points is signed so that positive is worse than decided: paid more on a BUY,
received less on a SELL: ``side * (price / decision_price - 1) * 1e4`` with side +1 / -1. A fill's
own ``slippage_bps`` is used when the execution service set it; otherwise it is computed from the
fill's ``decision_price`` or, failing that, the reference price of the decision behind the order.
The cost of a fill is ``slippage_bps * 1e-4 * decision_price * quantity`` (the notional when the
decision price is unknown).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

SIDE_SIGN = {"BUY": 1.0, "SELL": -1.0}


def slippage_bps(side: str, price: float, decision_price: float) -> float:
    """Signed slippage of ``price`` against ``decision_price`` (positive = worse)."""
    return SIDE_SIGN[side] * (price / decision_price - 1.0) * 1e4


@dataclass(frozen=True)
class FillSlippage:
    """What the critic keeps of one fill."""

    client_order_id: str
    symbol: str
    side: str
    quantity: float
    price: float
    fee: float
    decision_price: float | None
    slippage_bps: float | None

    @property
    def cost(self) -> float:
        """Slippage cost in base currency (0 without a slippage figure)."""
        if self.slippage_bps is None:
            return 0.0
        reference = self.decision_price if self.decision_price is not None else self.price
        return self.slippage_bps * 1e-4 * reference * self.quantity


def fill_slippage(fill: dict[str, Any], fallback_decision_price: float | None) -> FillSlippage:
    """The slippage record of an ``OrderFilled`` value."""
    decision_price = fill["decision_price"] if fill["decision_price"] is not None else fallback_decision_price
    slip = fill["slippage_bps"]
    if slip is None and decision_price is not None and decision_price > 0:
        slip = slippage_bps(fill["side"], fill["price"], decision_price)
    return FillSlippage(fill["client_order_id"], fill["symbol"], fill["side"], fill["quantity"], fill["price"],
                        fill["fee"], decision_price, slip)


class SlippageBook:
    """The fills of one review window."""

    def __init__(self) -> None:
        self.fills: list[FillSlippage] = []

    def add(self, fill: FillSlippage) -> None:
        """Record a fill."""
        self.fills.append(fill)

    def stats(self) -> dict[str, Any]:
        """A ``SlippageStats`` record over the fills with a slippage figure."""
        values = np.array([f.slippage_bps for f in self.fills if f.slippage_bps is not None], dtype=float)
        if not len(values):
            return {"count": 0, "mean_bps": None, "median_bps": None, "p95_bps": None, "max_bps": None,
                    "cost": 0.0, "twap_mean_bps": None}
        return {
            "count": len(values),
            "mean_bps": float(values.mean()),
            "median_bps": float(np.median(values)),
            "p95_bps": float(np.percentile(values, 95)),
            "max_bps": float(values.max()),
            "cost": float(sum(f.cost for f in self.fills)),
            "twap_mean_bps": None,
        }

    def trades(self) -> list[dict[str, Any]]:
        """One ``TradeSlippage`` record per order, in order of first fill."""
        orders: dict[str, list[FillSlippage]] = {}
        for fill in self.fills:
            orders.setdefault(fill.client_order_id, []).append(fill)
        out = []
        for order_id, fills in orders.items():
            qty = sum(f.quantity for f in fills)
            avg = sum(f.price * f.quantity for f in fills) / qty
            decision_price = next((f.decision_price for f in fills if f.decision_price is not None), None)
            if decision_price is not None and decision_price > 0:
                slip: float | None = slippage_bps(fills[0].side, avg, decision_price)
            elif all(f.slippage_bps is not None for f in fills):
                slip = sum(f.slippage_bps * f.quantity for f in fills if f.slippage_bps is not None) / qty
            else:
                slip = None
            out.append({"client_order_id": order_id, "symbol": fills[0].symbol, "side": fills[0].side,
                        "quantity": qty, "decision_price": decision_price, "avg_fill_price": avg,
                        "slippage_bps": slip, "fees": sum(f.fee for f in fills)})
        return out
