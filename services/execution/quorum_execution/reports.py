"""Order state kept by the engine, and the ``ExecutionReported`` / ``OrderFilled`` records built from it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from quorum_common.engine import envelope

from quorum_execution.journal import FINAL_STATUSES
from quorum_execution.venue import Fill

REPORTS_TOPIC = "exec.reports"
FILLS_TOPIC = "exec.fills"


@dataclass
class OrderState:
    """What the engine knows of one order: the ``SubmitOrder`` record and its fills so far."""

    order: dict[str, Any]
    venue: str
    filled: float = 0.0
    filled_notional: float = 0.0
    venue_order_id: str | None = None
    reports: int = 0

    @property
    def client_order_id(self) -> str:
        """The order's client order id."""
        return self.order["client_order_id"]

    @property
    def remaining(self) -> float:
        """Quantity not filled yet."""
        return max(0.0, float(self.order["quantity"]) - self.filled)

    @property
    def avg_price(self) -> float | None:
        """Average fill price, when anything was filled."""
        return self.filled_notional / self.filled if self.filled > 0 else None

    def apply(self, fill: Fill) -> None:
        """Add a fill; a final fill snaps float rounding so the filled quantity equals the order quantity."""
        self.filled += fill.quantity
        quantity = float(self.order["quantity"])
        if fill.final and abs(self.filled - quantity) <= 1e-9 * quantity:
            self.filled = quantity
        self.filled_notional += fill.quantity * fill.price
        self.venue_order_id = fill.venue_order_id or self.venue_order_id


def execution_report(state: OrderState, status: str, ts: int, reason: str | None = None,
                     fill: Fill | None = None) -> dict[str, Any]:
    """The ``ExecutionReported`` record of ``state`` after the event that led to ``status``."""
    state.reports += 1
    order = state.order
    final = status in FINAL_STATUSES
    return {
        **envelope(ts, "exec.report", state.client_order_id, status, state.reports,
                   correlation_id=order["correlation_id"]),
        "client_order_id": state.client_order_id,
        "venue_order_id": state.venue_order_id,
        "portfolio_id": order["portfolio_id"],
        "symbol": order["symbol"],
        "side": order["side"],
        "status": status,
        "order_quantity": float(order["quantity"]),
        "filled_quantity": state.filled,
        "remaining_quantity": 0.0 if final else state.remaining,
        "avg_price": state.avg_price,
        "last_fill_quantity": fill.quantity if fill else None,
        "last_fill_price": fill.price if fill else None,
        "reason": reason,
        "venue": state.venue,
        "exec_algo": order["exec_algo"],
        "is_final": final,
    }


def slippage_bps(side: str, price: float, decision_price: float) -> float | None:
    """Signed slippage against the decision price; positive = worse (paid more on BUY, got less on SELL)."""
    if not decision_price > 0:
        return None
    sign = 1.0 if side == "BUY" else -1.0
    return sign * (price - decision_price) / decision_price * 1e4


def fill_record(state: OrderState, fill: Fill, fee_currency: str, final: bool) -> dict[str, Any]:
    """The ``OrderFilled`` record of ``fill`` (already applied to ``state``)."""
    order = state.order
    ref = float(order["reference_price"])
    return {
        **envelope(fill.ts, "exec.fill", fill.fill_id, correlation_id=order["correlation_id"]),
        "client_order_id": state.client_order_id,
        "fill_id": fill.fill_id,
        "venue_order_id": fill.venue_order_id or state.venue_order_id,
        "portfolio_id": order["portfolio_id"],
        "decision_id": order["decision_id"],
        "symbol": order["symbol"],
        "side": order["side"],
        "quantity": fill.quantity,
        "price": fill.price,
        "notional": fill.quantity * fill.price,
        "fee": fill.fee,
        "fee_currency": fee_currency,
        "liquidity": fill.liquidity,
        "venue": state.venue,
        "cumulative_quantity": state.filled,
        "leaves_quantity": 0.0 if final else state.remaining,
        "is_final": final,
        "decision_price": ref,
        "arrival_price": fill.arrival_price,
        "slippage_bps": slippage_bps(order["side"], fill.price, ref),
        "asset_class": order["asset_class"],
        "sector": order["sector"],
        "exec_algo": order["exec_algo"],
        "tilt_decision_id": order["tilt_decision_id"],
        "tilt_share": order["tilt_share"],
    }
