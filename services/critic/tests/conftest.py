"""Schema-complete input records for the critic tests, built from the catalog's sample records."""

from __future__ import annotations

from typing import Any

import pytest
from quorum_common.bus.message import Message
from quorum_common.engine import envelope
from quorum_common.phases import clock_tick
from quorum_common.schemas import default_catalog
from quorum_common.testing.samples import sample_record

CATALOG = default_catalog()
DAY_NS = 86_400 * 10**9
T0 = 1_700_000_000 * 10**9


class Records:
    """Builders of valid records for every topic the critic reads; ``day`` sets the event time."""

    @staticmethod
    def base(topic: str, day: float, *id_parts: object, **fields: Any) -> dict[str, Any]:
        """A sample record of ``topic`` at ``T0 + day`` days with ``fields`` overridden."""
        ts = T0 + int(day * DAY_NS)
        return {**sample_record(CATALOG.schema_for(topic)), **envelope(ts, topic, *id_parts), **fields}

    def vote(self, agent: str, contribution: float, score: float | None = None, muted: bool = False,
             strategy: str = "MOMENTUM", weight: float = 1.0) -> dict[str, Any]:
        """One VoteContribution."""
        return {"agent_id": agent, "strategy": strategy, "score": contribution if score is None else score,
                "confidence": 1.0, "weight": weight, "contribution": 0.0 if muted else contribution, "muted": muted,
                "mute_reason": "HIGH_VOL" if muted else None, "signal_event_id": None, "signal_ts": None}

    def decision(self, day: float, symbol: str, price: float, votes: list[dict[str, Any]]) -> dict[str, Any]:
        """A DecisionMade with ``votes`` as its breakdown."""
        rec = self.base("signals.decisions", day, symbol)
        return {**rec, "decision_id": f"d-{symbol}-{day}", "symbol": symbol, "breakdown": votes,
                "reference_price": price, "combined_score": sum(v["contribution"] for v in votes)}

    def fill(self, day: float, symbol: str, side: str, qty: float, price: float, decision: dict[str, Any] | None,
             order: str = "o1", fee: float = 1.0, decision_price: float | None = None,
             slippage_bps: float | None = None, portfolio: str = "p1", by_correlation: bool = False,
             tilt_share: float | None = None, tilted_by: dict[str, Any] | None = None, leaves: float = 0.0
             ) -> dict[str, Any]:
        """An OrderFilled traced to ``decision`` by decision_id (or by correlation_id); its order's target owes
        ``tilt_share`` to the tilt of the decision ``tilted_by`` (None: a fill without a tilt, as before tilts), and
        ``leaves`` of the order is still open after it."""
        rec = self.base("exec.fills", day, order, symbol, qty)
        trace = decision["decision_id"] if decision and not by_correlation else None
        return {**rec, "client_order_id": order, "fill_id": f"f-{order}-{day}", "portfolio_id": portfolio,
                "decision_id": trace, "symbol": symbol, "side": side, "quantity": qty, "price": price,
                "notional": qty * price, "fee": fee, "decision_price": decision_price, "slippage_bps": slippage_bps,
                "correlation_id": decision["event_id"] if decision and by_correlation else rec["event_id"],
                "tilt_share": tilt_share, "tilt_decision_id": tilted_by["decision_id"] if tilted_by else None,
                "leaves_quantity": leaves}

    def report(self, day: float, order: str, status: str, final: bool = True, portfolio: str = "p1"
               ) -> dict[str, Any]:
        """An ExecutionReported."""
        return {**self.base("exec.reports", day, order, status), "client_order_id": order, "status": status,
                "is_final": final, "portfolio_id": portfolio}

    def snapshot(self, day: float, nav: float, drawdown: float = 0.0, positions: dict[str, tuple[float, float]]
                 | None = None, portfolio: str = "p1") -> dict[str, Any]:
        """A PortfolioSnapshotted with ``positions`` as {symbol: (quantity, last_price)}."""
        pos = [{"symbol": s, "quantity": q, "avg_cost": p, "last_price": p, "market_value": q * p,
                "unrealised_pnl": 0.0, "realised_pnl": 0.0, "weight": q * p / nav, "target_weight": None,
                "sector": "IT", "asset_class": "equity"} for s, (q, p) in sorted((positions or {}).items())]
        return {**self.base("portfolio.snapshots", day, portfolio), "portfolio_id": portfolio, "nav": nav,
                "peak_nav": nav / (1 - drawdown), "drawdown": drawdown, "positions": pos}

    def regime(self, day: float, label: str, scope: str = "market") -> dict[str, Any]:
        """A RegimeChanged with ``label``."""
        return {**self.base("regime.state", day, label), "scope": scope, "label": label, "previous_label": None,
                "probabilities": [1.0], "state_labels": [label], "state": 0, "previous_state": None}

    def mandate(self, day: float, max_drawdown: float, max_position_weight: float = 0.2,
                max_gross_exposure: float | None = 1.0) -> dict[str, Any]:
        """A MandateCompiled with the given drawdown and risk limits."""
        rec = self.base("mandate.compiled", day, "m")
        limits = {**rec["risk_limits"], "max_position_weight": max_position_weight,
                  "max_gross_exposure": max_gross_exposure}
        return {**rec, "max_drawdown": max_drawdown, "risk_limits": limits}

    @staticmethod
    def tick(day: int, kind: str = "MONTH_END") -> dict[str, Any]:
        """A sys.clock tick of bar day ``day``."""
        return clock_tick(kind, T0 + day * DAY_NS, sequence=day)


TOPIC_OF = {
    "breakdown": "signals.decisions", "fill_id": "exec.fills", "status": "exec.reports", "nav": "portfolio.snapshots",
    "scope": "regime.state", "max_drawdown": "mandate.compiled", "kind": "sys.clock",
}


def message(record: dict[str, Any]) -> Message:
    """The bus message of a record built by :class:`Records` (topic from its distinctive field)."""
    topic = next(t for field, t in TOPIC_OF.items() if field in record)
    return Message(topic, None, record, CATALOG.schema_for(topic).name)


@pytest.fixture
def records() -> Records:
    """Record builders."""
    return Records()


@pytest.fixture
def to_message():
    """``to_message(record)``: the Message of a built record."""
    return message
