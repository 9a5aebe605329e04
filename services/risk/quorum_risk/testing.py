"""Record builders and a harness for tests of the risk service and of services wired to it (admin, desk).

Each builder returns a complete, schema-valid record: a seeded sample of the topic's schema with the
fields that matter overridden.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from quorum_common.bus.inprocess import InProcessBus
from quorum_common.engine import envelope
from quorum_common.schemas import default_catalog
from quorum_common.testing.samples import sample_record

from quorum_risk.config import RiskSettings
from quorum_risk.engine import RiskEngine

T0 = 1_700_000_000_000_000_000
"""A bar time; orders of that bar are stamped ``T0 + 2`` (SESSION_CLOSE)."""
UNIVERSE = {
    "AAPL": ("Information Technology", "equity"),
    "MSFT": ("Information Technology", "equity"),
    "JPM": ("Financials", "equity"),
    "BTC-USD": ("Crypto", "crypto"),
}
RISK_LIMITS: dict[str, Any] = {
    "max_order_notional": 100_000.0, "max_order_capital_fraction": 0.2, "fat_finger_volume_fraction": 0.01,
    "max_position_weight": 0.10, "price_collar_pct": 0.05, "max_orders_per_minute": 1000, "drawdown_lock": 0.15,
    "stale_price_ns": None, "max_gross_exposure": None, "max_open_orders": None, "allow_short": False,
}


def _sample(topic: str, seed: int = 0) -> dict[str, Any]:
    return sample_record(default_catalog().schema_for(topic), seed=seed)


def mandate(version: int = 1, ts: int = T0 - 10, capital: float = 1_000_000.0, **risk_limits: Any) -> dict[str, Any]:
    """A ``MandateCompiled`` with :data:`UNIVERSE`, IT capped at 0.15, crypto at 0.05, and :data:`RISK_LIMITS`."""
    rec = _sample("mandate.compiled", version)
    rec.update(envelope(ts, "mandate", version))
    rec.update({
        "mandate_id": "m1", "version": version, "capital": capital,
        "universe": [{"symbol": s, "sector": sec, "asset_class": cls, "venue": None, "max_weight": None}
                     for s, (sec, cls) in UNIVERSE.items()],
        "sector_caps": {"Information Technology": 0.15}, "asset_class_caps": {"crypto": 0.05},
        "risk_limits": {**RISK_LIMITS, **risk_limits},
    })
    return rec


def bar(symbol: str, close: float, ts: int = T0, volume: float = 10_000_000.0) -> dict[str, Any]:
    """A daily ``BarClosed`` of ``symbol``."""
    sector, cls = UNIVERSE.get(symbol, ("Unknown", "equity"))
    return {**envelope(ts, "bar", symbol), "symbol": symbol, "venue": "TEST", "interval": "1d", "ts_open": ts,
            "open": close, "high": close, "low": close, "close": close, "volume": volume, "vwap": None,
            "trade_count": None, "asset_class": cls, "sector": sector, "currency": "USD", "adjusted": False}


def order(coid: str, symbol: str = "AAPL", side: str = "BUY", quantity: float = 10.0, price: float = 100.0,
          ts: int = T0 + 2, limit_price: float | None = None, reduces_risk: bool = False) -> dict[str, Any]:
    """An ``OrderProposed`` (MARKET unless ``limit_price`` is given)."""
    sector, cls = UNIVERSE.get(symbol, ("Unknown", "equity"))
    return {**envelope(ts, "order", coid), "client_order_id": coid, "portfolio_id": "p1", "decision_id": None,
            "symbol": symbol, "side": side, "quantity": quantity,
            "order_type": "MARKET" if limit_price is None else "LIMIT", "limit_price": limit_price,
            "time_in_force": "DAY", "reference_price": price, "notional": quantity * price, "origin": "REBALANCE",
            "reason": "test", "asset_class": cls, "sector": sector, "reduces_risk": reduces_risk,
            "target_weight": None, "venue": None, "exec_algo": "IMMEDIATE",
            "tilt_decision_id": None, "tilt_share": None}


def snapshot(positions: dict[str, tuple[float, float]], nav: float = 1_000_000.0, drawdown: float = 0.0,
             ts: int = T0 + 1, sequence: int = 1) -> dict[str, Any]:
    """A ``PortfolioSnapshotted`` holding ``positions`` (symbol -> (quantity, price))."""
    pos = []
    for symbol, (qty, price) in sorted(positions.items()):
        sector, cls = UNIVERSE.get(symbol, ("Unknown", "equity"))
        pos.append({"symbol": symbol, "quantity": qty, "avg_cost": price, "last_price": price,
                    "market_value": qty * price, "unrealised_pnl": 0.0, "realised_pnl": 0.0,
                    "weight": qty * price / nav, "target_weight": None, "sector": sector, "asset_class": cls})
    gross = sum(abs(p["market_value"]) for p in pos)
    return {**envelope(ts, "snapshot", sequence), "portfolio_id": "p1", "sequence": sequence, "base_currency": "USD",
            "cash": nav - gross, "nav": nav, "peak_nav": nav / (1 - drawdown), "drawdown": drawdown,
            "realised_pnl": 0.0, "unrealised_pnl": 0.0, "fees_paid": 0.0, "positions": pos,
            "gross_exposure": gross / nav, "net_exposure": gross / nav, "exposure_by_sector": {},
            "exposure_by_asset_class": {}, "open_orders": 0, "last_fill_id": None}


def command(name: str, role: str = "OPERATOR", ts: int = T0 + 1, limits: dict[str, float] | None = None,
            issued_by: str = "alice", desk: str = "desk") -> dict[str, Any]:
    """An ``IssueControlCommand``."""
    return {**envelope(ts, "cmd", name, role, issued_by), "desk": desk, "command": name, "issued_by": issued_by,
            "role": role, "reason": "test", "limits": limits, "mandate_document": None, "symbols": None,
            "source_service": None}


def fill(coid: str, symbol: str, side: str, quantity: float, leaves: float, ts: int, price: float = 100.0
         ) -> dict[str, Any]:
    """An ``OrderFilled`` of ``quantity`` leaving ``leaves``."""
    rec = _sample("exec.fills")
    rec.update({**envelope(ts, "fill", coid, leaves), "client_order_id": coid, "symbol": symbol, "side": side,
                "quantity": quantity, "price": price, "notional": quantity * price, "leaves_quantity": leaves,
                "is_final": leaves <= 0})
    return rec


def report(coid: str, status: str, ts: int, is_final: bool = True) -> dict[str, Any]:
    """An ``ExecutionReported`` with ``status``."""
    rec = _sample("exec.reports")
    rec.update({**envelope(ts, "report", coid, status), "client_order_id": coid, "status": status,
                "is_final": is_final})
    return rec


class Harness:
    """Feeds records to a :class:`RiskEngine` over an :class:`InProcessBus` and records everything delivered."""

    def __init__(self, bus: InProcessBus | None = None, **settings: Any) -> None:
        self.bus = bus or InProcessBus()
        self.engine = RiskEngine(RiskSettings(**settings), self.bus.publisher("risk"))
        self.bus.subscribe_engine("risk", self.engine)
        self.seen: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.bus.tap(lambda m: self.seen[m.topic].append(m.value))
        self._pub = self.bus.publisher("test")

    def send(self, topic: str, *records: dict[str, Any]) -> Harness:
        """Publish ``records`` on ``topic`` and deliver until the queue is empty."""
        for rec in records:
            self._pub.publish(topic, rec)
        self.bus.run()
        return self

    def decide(self, order: dict[str, Any]) -> dict[str, Any]:
        """Send one order and return its risk decision."""
        self.send("orders.proposed", order)
        return self.decisions()[-1]

    def decisions(self) -> list[dict[str, Any]]:
        """Every ``RiskDecisionMade`` so far."""
        return self.seen["risk.decisions"]

    def approved(self) -> list[str]:
        """Client order ids that reached ``orders.approved``."""
        return [r["client_order_id"] for r in self.seen["orders.approved"]]

    def states(self) -> list[dict[str, Any]]:
        """Every ``TradingStateChanged`` delivered."""
        return self.seen["control.state"]

    def refused(self) -> list[str]:
        """Errors of dead-lettered control commands."""
        return [d.error for d in self.bus.dead_letters if d.topic == "control.commands"]


def market(h: Harness, ts: int = T0) -> Harness:
    """Mandate, then a bar of every universe symbol (AAPL, MSFT, JPM at 100, BTC-USD at 50 000)."""
    h.send("mandate.compiled", mandate())
    prices = {"AAPL": 100.0, "MSFT": 100.0, "JPM": 100.0, "BTC-USD": 50_000.0}
    return h.send("md.bars", *(bar(s, p, ts=ts) for s, p in prices.items()))
