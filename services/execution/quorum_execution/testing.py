"""Record factories and a collecting publisher for tests of the execution service and its neighbours."""

from __future__ import annotations

from typing import Any

from quorum_common.bus.message import Message
from quorum_common.engine import envelope

DAY_NS = 86_400 * 10**9
T0 = 19_675 * DAY_NS  # 2023-11-14 00:00 UTC
SCHEMAS = {"orders.approved": "quorum.v1.SubmitOrder", "md.bars": "quorum.v1.BarClosed",
           "control.state": "quorum.v1.TradingStateChanged", "exec.reports": "quorum.v1.ExecutionReported"}


class Collect:
    """A publisher that keeps what it is given."""

    def __init__(self) -> None:
        self.out: list[tuple[str, dict[str, Any]]] = []
        self.dead: list[tuple[str, Any, str]] = []

    def publish(self, topic: str, record: dict[str, Any], *, key: str | None = None) -> None:
        """Keep ``record``."""
        self.out.append((topic, record))

    def dead_letter(self, topic: str, payload: Any, reason: str, *, key: str | None = None, error: str = "") -> None:
        """Keep the refused input and its reason."""
        self.dead.append((topic, payload, reason))

    def on(self, topic: str) -> list[dict[str, Any]]:
        """Records published on ``topic``."""
        return [r for t, r in self.out if t == topic]

    def statuses(self, cid: str) -> list[str]:
        """Statuses of the reports of order ``cid``, in order."""
        return [r["status"] for r in self.on("exec.reports") if r["client_order_id"] == cid]


def order(cid: str = "o1", ts: int = T0 + 2, symbol: str = "AAPL", side: str = "BUY", quantity: float = 100.0,
          order_type: str = "MARKET", limit_price: float | None = None, tif: str = "DAY", ref: float = 100.0,
          reduces_risk: bool = False, asset_class: str = "equity") -> dict[str, Any]:
    """A ``SubmitOrder`` record."""
    return {
        **envelope(ts, "order", cid), "client_order_id": cid, "portfolio_id": "main", "decision_id": f"d-{cid}",
        "symbol": symbol, "side": side, "quantity": quantity, "order_type": order_type, "limit_price": limit_price,
        "time_in_force": tif, "reference_price": ref, "notional": quantity * ref, "origin": "REBALANCE",
        "reason": "test", "asset_class": asset_class, "sector": "Information Technology",
        "reduces_risk": reduces_risk, "target_weight": None, "venue": None, "exec_algo": "IMMEDIATE",
        "tilt_decision_id": None, "tilt_share": None,
        "approved_by": "risk", "risk_state": "ACTIVE", "risk_decision_id": f"r-{cid}",
    }


def bar(ts: int, open_: float = 100.0, high: float | None = None, low: float | None = None,
        close: float | None = None, volume: float = 1e6, symbol: str = "AAPL",
        asset_class: str = "equity") -> dict[str, Any]:
    """A ``BarClosed`` record."""
    close = open_ if close is None else close
    return {
        **envelope(ts, "bar", symbol), "symbol": symbol, "venue": "TEST", "interval": "1d", "ts_open": ts - DAY_NS,
        "open": open_, "high": max(open_, close) if high is None else high,
        "low": min(open_, close) if low is None else low, "close": close, "volume": volume, "vwap": None,
        "trade_count": None, "asset_class": asset_class, "sector": None, "currency": "USD", "adjusted": False,
    }


def trading_state(state: str, sequence: int, ts: int, reason: str = "test") -> dict[str, Any]:
    """A ``TradingStateChanged`` record."""
    return {
        **envelope(ts, "state", sequence), "desk": "desk", "sequence": sequence, "state": state,
        "previous_state": "ACTIVE", "reason": reason, "changed_by": "admin", "command_event_id": None,
        "limits": {}, "drawdown": None,
    }


def message(topic: str, record: dict[str, Any]) -> Message:
    """The bus message of ``record`` on ``topic``."""
    return Message(topic, None, record, SCHEMAS[topic])
