"""The parts of a compiled mandate (``mandate.compiled``) that the portfolio service follows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from quorum_common.universe import INSTRUMENTS


@dataclass(frozen=True)
class Asset:
    """One instrument of the mandate's universe."""

    symbol: str
    sector: str
    asset_class: str
    venue: str | None = None
    max_weight: float | None = None

    @property
    def tradable(self) -> bool:
        """Whether orders may be sent for it (indices of the static universe are market data only)."""
        known = INSTRUMENTS.get(self.symbol)
        return known is None or known.tradable


@dataclass(frozen=True)
class RebalancePolicy:
    """When to rebalance and which trades are worth sending."""

    calendar_days: int
    drift_band: float
    cooldown_days: int
    min_trade_value: float
    lookback_days: int | None = None


_REBALANCE_FIELDS = ("calendar_days", "drift_band", "cooldown_days", "min_trade_value", "lookback_days")


@dataclass(frozen=True)
class Mandate:
    """A compiled mandate, as the optimiser and the rebalancer need it."""

    mandate_id: str
    version: int
    capital: float
    base_currency: str
    risk_measure: str
    upper_risk: float
    objective: str
    universe: tuple[Asset, ...]
    rebalance: RebalancePolicy
    sector_caps: dict[str, float] = field(default_factory=dict)
    asset_class_caps: dict[str, float] = field(default_factory=dict)
    min_weights: dict[str, float] = field(default_factory=dict)
    cdar_alpha: float | None = None
    risk_free_rate: float = 0.0
    max_position_weight: float | None = None
    allow_short: bool = False
    max_order_notional: float | None = None
    """Largest order the risk layer accepts (the lower of its notional and capital-fraction limits)."""
    target_volatility: float | None = None
    """Annualised volatility the holdings aim at (:mod:`quorum_portfolio.exposure`); None: no target."""
    derisk_drawdown: float | None = None
    """Drawdown from which the targets shrink towards the drawdown lock; None: they do not."""

    @property
    def key(self) -> tuple[str, int]:
        """``(mandate_id, version)``: which mandate this is."""
        return self.mandate_id, self.version

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> Mandate:
        """Build from a decoded ``MandateCompiled`` record."""
        limits = rec["risk_limits"]
        return cls(
            mandate_id=rec["mandate_id"],
            version=int(rec["version"]),
            capital=float(rec["capital"]),
            base_currency=rec["base_currency"],
            risk_measure=rec["risk_measure"],
            upper_risk=float(rec["upper_risk"]),
            objective=rec.get("objective") or "MAX_SHARPE",
            universe=tuple(Asset(u["symbol"], u["sector"], u["asset_class"], u.get("venue"), u.get("max_weight"))
                           for u in rec["universe"]),
            rebalance=RebalancePolicy(**{k: rec["rebalance"][k] for k in _REBALANCE_FIELDS if k in rec["rebalance"]}),
            sector_caps=dict(rec.get("sector_caps") or {}),
            asset_class_caps=dict(rec.get("asset_class_caps") or {}),
            min_weights=dict(rec.get("min_weights") or {}),
            cdar_alpha=rec.get("cdar_alpha"),
            risk_free_rate=float(rec.get("risk_free_rate") or 0.0),
            max_position_weight=limits.get("max_position_weight"),
            allow_short=bool(limits.get("allow_short", False)),
            max_order_notional=_max_order_notional(limits, float(rec["capital"])),
            target_volatility=rec.get("target_volatility"),
            derisk_drawdown=rec.get("derisk_drawdown"),
        )

    def asset(self, symbol: str) -> Asset | None:
        """The universe entry of ``symbol``, or None when it is not in the mandate."""
        return next((a for a in self.universe if a.symbol == symbol), None)

    def asset_cap(self, asset: Asset) -> float:
        """The largest weight one instrument may have (its own cap and the risk layer's position cap)."""
        caps = [c for c in (asset.max_weight, self.max_position_weight) if c is not None]
        return min([1.0, *caps])


def _max_order_notional(limits: dict[str, Any], capital: float) -> float | None:
    """The lower of the risk layer's order-notional limit and its capital-fraction limit."""
    bounds = [limits.get("max_order_notional")]
    if limits.get("max_order_capital_fraction"):
        bounds.append(limits["max_order_capital_fraction"] * capital)
    bounds = [float(b) for b in bounds if b and b > 0]
    return min(bounds) if bounds else None
