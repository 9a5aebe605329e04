"""Record factories for the portfolio tests: compiled mandate, bars, fills, decisions, clock ticks."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from quorum_common.engine import envelope
from quorum_common.phases import phase_ticks
from quorum_common.schemas import default_catalog
from quorum_common.testing.samples import sample_record

DAY = 86_400_000_000_000
T0 = 1_600_000_000 * 1_000_000_000

UNIVERSE = [
    {"symbol": "AAPL", "sector": "Information Technology", "asset_class": "equity", "venue": "NASDAQ",
     "max_weight": None},
    {"symbol": "MSFT", "sector": "Information Technology", "asset_class": "equity", "venue": None, "max_weight": None},
    {"symbol": "JNJ", "sector": "Health Care", "asset_class": "equity", "venue": None, "max_weight": None},
    {"symbol": "KO", "sector": "Consumer Staples", "asset_class": "equity", "venue": None, "max_weight": None},
    {"symbol": "BTC-USD", "sector": "Crypto", "asset_class": "crypto", "venue": "COINBASE", "max_weight": None},
    {"symbol": "SPX", "sector": "Index", "asset_class": "index", "venue": None, "max_weight": None},
]


class Records:
    """Builders of valid records of each input topic."""

    @staticmethod
    def mandate(ts: int = T0, version: int = 1, **overrides: Any) -> dict[str, Any]:
        """A ``MandateCompiled`` record: a sample of the schema with the fields the portfolio reads set."""
        rec = sample_record(default_catalog().schema_for("mandate.compiled"), seed=1)
        rec.update(envelope(ts, "mandate", version))
        rec.update({
            "mandate_id": "m1", "version": version, "capital": 1_000_000.0, "base_currency": "USD",
            "risk_measure": "MDD", "upper_risk": 0.5, "cdar_alpha": None, "objective": "MAX_SHARPE",
            "risk_free_rate": None, "universe": UNIVERSE,
            "sector_caps": {"Information Technology": 0.30}, "asset_class_caps": {"crypto": 0.10},
            "min_weights": {}, "target_volatility": None, "derisk_drawdown": None,
            "rebalance": {"calendar_days": 30, "drift_band": 0.05, "cooldown_days": 5, "min_trade_value": 500.0,
                          "lookback_days": 250},
        })
        rec["risk_limits"] = {**rec["risk_limits"], "max_position_weight": 0.40, "allow_short": False,
                              "max_order_notional": 1e9, "max_order_capital_fraction": 1.0}
        rec.update(overrides)
        return rec

    @staticmethod
    def bar(symbol: str, ts: int, close: float) -> dict[str, Any]:
        """A daily ``BarClosed`` of ``symbol`` at ``ts``."""
        return {**envelope(ts, "bar", symbol), "symbol": symbol, "venue": "TEST", "interval": "1d",
                "ts_open": ts - DAY, "open": close, "high": close, "low": close, "close": close, "volume": 1e6,
                "vwap": None, "trade_count": None, "asset_class": "equity", "sector": None, "currency": "USD",
                "adjusted": False}

    @staticmethod
    def fill(order: dict[str, Any], ts: int, price: float, quantity: float | None = None, fee: float = 1.0,
             final: bool = True) -> dict[str, Any]:
        """An ``OrderFilled`` of a proposed ``order`` at ``price``."""
        qty = order["quantity"] if quantity is None else quantity
        return {**envelope(ts, "fill", order["client_order_id"], qty, correlation_id=order["correlation_id"]),
                "client_order_id": order["client_order_id"], "fill_id": f"{order['client_order_id']}-{ts}",
                "venue_order_id": None, "portfolio_id": order["portfolio_id"], "decision_id": order["decision_id"],
                "symbol": order["symbol"], "side": order["side"], "quantity": qty, "price": price,
                "notional": qty * price, "fee": fee, "fee_currency": "USD", "liquidity": "TAKER",
                "venue": "TEST", "cumulative_quantity": qty, "leaves_quantity": order["quantity"] - qty,
                "is_final": final, "decision_price": None, "arrival_price": None, "slippage_bps": None,
                "asset_class": order["asset_class"], "sector": order["sector"], "exec_algo": "IMMEDIATE"}

    @staticmethod
    def decision(symbol: str, ts: int, action: str, score: float) -> dict[str, Any]:
        """A ``DecisionMade`` on ``symbol``."""
        rec = sample_record(default_catalog().schema_for("signals.decisions"), seed=2)
        rec.update(envelope(ts, "decision", symbol))
        rec.update({"decision_id": f"d-{symbol}-{ts}", "symbol": symbol, "action": action, "combined_score": score,
                    "reference_price": 100.0})
        return rec

    @staticmethod
    def ticks(t: int, seq: int) -> list[dict[str, Any]]:
        """The lockstep phase ticks of bar time ``t`` (BAR_CLOSE ... ROUTE)."""
        return phase_ticks(t, seq)

    @staticmethod
    def prices(symbols: list[str], days: int, seed: int = 0) -> dict[str, np.ndarray]:
        """Seeded random-walk closes per symbol (distinct drifts so the optimiser has a choice)."""
        rng = np.random.default_rng(seed)
        out = {}
        for i, s in enumerate(symbols):
            rets = rng.normal(0.0004 * (i + 1), 0.01 + 0.004 * i, days)
            out[s] = 100.0 * np.exp(np.cumsum(rets))
        return out


@pytest.fixture
def records() -> type[Records]:
    """The record builders."""
    return Records
