"""Compiling a :class:`~quorum_manager.mandate.Mandate` into the ``MandateCompiled`` record (brief §1).

A pure, deterministic function of the mandate, its source text, a version and an event time. The
numbers that depend on the risk tolerance come from :data:`TOLERANCE_TABLE`; the calendar period of
rebalancing comes from the horizon (:data:`CALENDAR_DAYS_BY_HORIZON`). The Python risk layer's limits
are the tighter ones; the C++ sidecar's hard limits are :data:`SIDECAR_SLACK` times looser, so the
Python layer binds first and the sidecar catches what slips past it.

| risk tolerance | conservative | moderate | aggressive |
|---|---|---|---|
| risk measure (when not given) | MDD | CDaR | CDaR |
| upper risk = max_drawdown x | 0.8 | 0.9 | 1.0 |
| drawdown lock = max_drawdown x | 0.7 | 0.8 | 0.9 |
| de-risking from drawdown = drawdown lock x | 0.25 | 0.33 | 0.5 |
| target volatility (when not given) | 0.06 | 0.10 | 0.15 |
| drift band | 0.03 | 0.05 | 0.08 |
| cooldown days | 10 | 5 | 2 |
| optimiser lookback days | 756 | 504 | 252 |
| max position weight | 0.10 | 0.15 | 0.25 |
| max order (fraction of capital) | 0.05 | 0.10 | 0.20 |
| fat finger (fraction of avg. volume) | 0.01 | 0.02 | 0.05 |
| price collar | 0.03 | 0.05 | 0.10 |
| orders per minute | 30 | 60 | 120 |
| open orders | 50 | 100 | 200 |
| min trade (fraction of capital) | 0.001 | 0.0005 | 0.0002 |
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

from quorum_common.engine import envelope

from quorum_manager.mandate import Mandate

CDAR_ALPHA = 0.05
"""Confidence level of CDaR: the mean of the worst 5 % drawdowns."""
SIDECAR_SLACK = 1.5
"""Sidecar hard limits = Python risk limits x this factor (collar and open orders x 2)."""
STALE_PRICE_NS = 4 * 86_400 * 10**9
"""A last price older than four days (a long weekend of daily bars) is stale."""
MIN_TRADE_FLOOR = 100.0
"""No trade below this value in base currency, whatever the capital."""
CALENDAR_DAYS_BY_HORIZON: tuple[tuple[int, int], ...] = ((90, 7), (365, 14), (10**9, 30))
"""(horizon at most N days, calendar rebalance period): weekly under a quarter, fortnightly up to a
year, monthly beyond."""
OBJECTIVES = {"Sharpe": "MAX_SHARPE", "MinRisk": "MIN_RISK", "MaxRet": "MAX_RETURN", "Utility": "MAX_UTILITY"}
"""riskfolio-lib objective names → the record's enum."""


@dataclass(frozen=True)
class ToleranceRow:
    """The tolerance-dependent numbers of the compilation (module docstring table)."""

    risk_measure: str
    upper_risk_factor: float
    drawdown_lock_factor: float
    derisk_factor: float
    target_volatility: float
    drift_band: float
    cooldown_days: int
    lookback_days: int
    max_position_weight: float
    max_order_capital_fraction: float
    fat_finger_volume_fraction: float
    price_collar_pct: float
    max_orders_per_minute: int
    max_open_orders: int
    min_trade_fraction: float


TOLERANCE_TABLE: dict[str, ToleranceRow] = {
    "conservative": ToleranceRow("MDD", 0.8, 0.7, 0.25, 0.06, 0.03, 10, 756, 0.10, 0.05, 0.01, 0.03, 30, 50, 0.001),
    "moderate": ToleranceRow("CDaR", 0.9, 0.8, 0.33, 0.10, 0.05, 5, 504, 0.15, 0.10, 0.02, 0.05, 60, 100, 0.0005),
    "aggressive": ToleranceRow("CDaR", 1.0, 0.9, 0.5, 0.15, 0.08, 2, 252, 0.25, 0.20, 0.05, 0.10, 120, 200, 0.0002),
}


def calendar_days(horizon_days: int) -> int:
    """Calendar rebalance period for a horizon of ``horizon_days``."""
    return next(period for limit, period in CALENDAR_DAYS_BY_HORIZON if horizon_days <= limit)


def sha256_hex(text: str) -> str:
    """SHA-256 hex digest of ``text`` (UTF-8)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def compile_mandate(mandate: Mandate, source_document: str, *, ts_event: int, version: int = 1,
                    compiled_by: str = "SYSTEM", explicit_fields: set[str] | None = None) -> dict[str, Any]:
    """The ``MandateCompiled`` record of ``mandate``.

    ``source_document`` is the accepted document as JSON; ``explicit_fields`` are the fields the user
    wrote (the others get a warning saying a default was applied; None means all were written).
    """
    row = TOLERANCE_TABLE[mandate.risk_tolerance]
    measure = (mandate.risk_measure or row.risk_measure).upper()
    period = calendar_days(mandate.horizon_days)
    order_notional = mandate.capital * row.max_order_capital_fraction
    gross = 1.0
    lock = mandate.max_drawdown * row.drawdown_lock_factor
    per_second = max(1, math.ceil(row.max_orders_per_minute / 60 * SIDECAR_SLACK))
    return {
        **envelope(ts_event, "mandate", mandate.mandate_id, version),
        "mandate_id": mandate.mandate_id,
        "version": version,
        "capital": mandate.capital,
        "base_currency": mandate.base_currency,
        "horizon": mandate.horizon,
        "horizon_days": mandate.horizon_days,
        "risk_tolerance": mandate.risk_tolerance.upper(),
        "max_drawdown": mandate.max_drawdown,
        "risk_measure": measure,
        "upper_risk": mandate.max_drawdown * row.upper_risk_factor,
        "cdar_alpha": CDAR_ALPHA if measure == "CDAR" else None,
        "objective": OBJECTIVES[mandate.objective],
        "risk_free_rate": mandate.risk_free_rate,
        "universe": [m.model_dump() for m in mandate.universe],
        "benchmarks": list(mandate.benchmarks) if mandate.benchmarks is not None else None,
        "sector_caps": dict(mandate.sector_caps),
        "asset_class_caps": dict(mandate.asset_class_caps),
        "min_weights": dict(mandate.min_weights),
        "rebalance": {
            "calendar_days": period,
            "drift_band": row.drift_band,
            "cooldown_days": min(row.cooldown_days, period),
            "min_trade_value": max(MIN_TRADE_FLOOR, mandate.capital * row.min_trade_fraction),
            "lookback_days": row.lookback_days,
        },
        "risk_limits": {
            "max_order_notional": order_notional,
            "max_order_capital_fraction": row.max_order_capital_fraction,
            "fat_finger_volume_fraction": row.fat_finger_volume_fraction,
            "max_position_weight": row.max_position_weight,
            "price_collar_pct": row.price_collar_pct,
            "max_orders_per_minute": row.max_orders_per_minute,
            "drawdown_lock": lock,
            "stale_price_ns": STALE_PRICE_NS,
            "max_gross_exposure": gross,
            "max_open_orders": row.max_open_orders,
            "allow_short": mandate.allow_short,
        },
        "sidecar_limits": {
            "max_order_notional": order_notional * SIDECAR_SLACK,
            "max_order_quantity": order_notional * SIDECAR_SLACK,  # units, for any price >= 1 base ccy
            "max_position_notional": mandate.capital * row.max_position_weight * SIDECAR_SLACK,
            "max_gross_notional": mandate.capital * gross * SIDECAR_SLACK,
            "price_collar_pct": row.price_collar_pct * 2,
            "max_orders_per_second": per_second,
            "max_open_orders": row.max_open_orders * 2,
        },
        "ensemble_weights": {label: dict(table) for label, table in mandate.ensemble.weights.items()},
        "muted_strategies": {label: list(s) for label, s in mandate.ensemble.muted.items()},
        "thresholds": mandate.ensemble.thresholds.model_dump(),
        "source_document": source_document,
        "source_sha256": sha256_hex(source_document),
        "compiled_by": compiled_by,
        "warnings": _warnings(mandate, row, explicit_fields),
        "target_volatility": mandate.target_volatility or row.target_volatility,
        "derisk_drawdown": lock * row.derisk_factor,
    }


def _warnings(mandate: Mandate, row: ToleranceRow, explicit: set[str] | None) -> list[str]:
    notes: list[str] = []
    if explicit is not None:
        if "risk_measure" not in explicit:
            notes.append(f"risk_measure: defaulted to {row.risk_measure} from risk_tolerance {mandate.risk_tolerance}")
        if "universe" not in explicit:
            notes.append(f"universe: defaulted to the {len(mandate.universe)} tradable instruments of the desk")
        if "ensemble" not in explicit:
            notes.append("ensemble: the seed's regime weights and thresholds (±0.6) apply")
    if len(mandate.universe) * row.max_position_weight < 1:
        notes.append(f"risk_limits.max_position_weight: {row.max_position_weight} x {len(mandate.universe)} "
                     "instruments < 1, the portfolio cannot be fully invested")
    if mandate.objective == "MaxRet":
        notes.append("objective: MaxRet relies on the drawdown bound alone to control risk")
    return notes
