"""The risk limits in force: compiled from the mandate, tightened or set by control commands.

Every limit is "smaller is tighter" (a lower notional, weight, cap, rate or drawdown lock admits
fewer orders; ``allow_short`` 0 is tighter than 1), which makes tightening a simple comparison.
Limits travel as a flat ``name -> value`` map (``TradingStateChanged.limits``): scalar names as
below, ``sector_cap.<sector>``, ``asset_class_cap.<class>`` and ``mandate_version``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

SECTOR_PREFIX = "sector_cap."
ASSET_CLASS_PREFIX = "asset_class_cap."
MANDATE_VERSION = "mandate_version"
ALL = "*"
"""Key of a TIGHTEN_LIMITS scale that applies to every numeric limit."""


class LimitsError(ValueError):
    """A limit change is invalid or would loosen a limit without the right to."""


@dataclass(frozen=True)
class Limits:
    """Pre-trade limits of the Python risk layer."""

    capital: float
    max_order_notional: float
    max_order_capital_fraction: float
    fat_finger_volume_fraction: float
    max_position_weight: float
    price_collar_pct: float
    max_orders_per_minute: float
    drawdown_lock: float
    stale_price_ns: float | None = None
    max_gross_exposure: float | None = None
    max_open_orders: float | None = None
    allow_short: float = 0.0
    sector_caps: dict[str, float] = field(default_factory=dict)
    asset_class_caps: dict[str, float] = field(default_factory=dict)
    mandate_version: int = 0

    @classmethod
    def from_mandate(cls, mandate: Mapping[str, Any]) -> Limits:
        """The limits of a ``MandateCompiled`` record."""
        rl = mandate["risk_limits"]
        return cls(
            capital=float(mandate["capital"]),
            max_order_notional=rl["max_order_notional"],
            max_order_capital_fraction=rl["max_order_capital_fraction"],
            fat_finger_volume_fraction=rl["fat_finger_volume_fraction"],
            max_position_weight=rl["max_position_weight"],
            price_collar_pct=rl["price_collar_pct"],
            max_orders_per_minute=float(rl["max_orders_per_minute"]),
            drawdown_lock=rl["drawdown_lock"],
            stale_price_ns=_opt(rl.get("stale_price_ns")),
            max_gross_exposure=_opt(rl.get("max_gross_exposure")),
            max_open_orders=_opt(rl.get("max_open_orders")),
            allow_short=1.0 if rl.get("allow_short") else 0.0,
            sector_caps=dict(mandate["sector_caps"]),
            asset_class_caps=dict(mandate["asset_class_caps"]),
            mandate_version=int(mandate["version"]),
        )

    def to_map(self) -> dict[str, float]:
        """The flat map published on ``control.state``."""
        out = {k: float(v) for k, v in self._scalars().items() if v is not None}
        out.update({SECTOR_PREFIX + k: v for k, v in self.sector_caps.items()})
        out.update({ASSET_CLASS_PREFIX + k: v for k, v in self.asset_class_caps.items()})
        out[MANDATE_VERSION] = float(self.mandate_version)
        return out

    @classmethod
    def from_map(cls, values: Mapping[str, float]) -> Limits:
        """Limits from a map written by :meth:`to_map`; ``LimitsError`` names a missing limit."""
        scalars: dict[str, Any] = {}
        for f in _scalar_fields():
            if f in values:
                scalars[f] = float(values[f])
            elif f not in _OPTIONAL:
                raise LimitsError(f"limits map lacks {f!r}")
        return cls(
            **scalars,
            sector_caps={k[len(SECTOR_PREFIX):]: v for k, v in values.items() if k.startswith(SECTOR_PREFIX)},
            asset_class_caps={k[len(ASSET_CLASS_PREFIX):]: v for k, v in values.items()
                              if k.startswith(ASSET_CLASS_PREFIX)},
            mandate_version=int(values.get(MANDATE_VERSION, 0)),
        )

    def tightened(self, scales: Mapping[str, float]) -> Limits:
        """Multiply limits by ``scales`` (each in (0, 1]); key ``*`` scales every numeric limit."""
        for name, scale in scales.items():
            if not (math.isfinite(scale) and 0 < scale <= 1):
                raise LimitsError(f"scale of {name!r} must be in (0, 1] (tighten only), got {scale}")
        current = self.to_map()
        unknown = sorted(set(scales) - ((set(current) | _SCALAR_LIMITS) - _FIXED) - {ALL})
        if unknown:
            raise LimitsError(f"unknown limits {unknown}")
        # A known limit that this mandate does not set (None) has nothing to tighten: skip its factor.
        every = scales.get(ALL, 1.0)
        new = {k: v * scales.get(k, 1.0) * (every if k not in _UNSCALED else 1.0) for k, v in current.items()}
        return Limits.from_map(new)

    def with_values(self, values: Mapping[str, float], may_loosen: bool) -> Limits:
        """Set limits to ``values``; without ``may_loosen`` each new value must not exceed the current one."""
        current = self.to_map()
        for name, value in values.items():
            known = name in current or name in _OPTIONAL or name.startswith((SECTOR_PREFIX, ASSET_CLASS_PREFIX))
            if not known or name in _FIXED:
                raise LimitsError(f"limit {name!r} cannot be set")
            if not (math.isfinite(value) and value >= 0):
                raise LimitsError(f"limit {name!r} must be a finite non-negative number, got {value}")
            if not may_loosen and name in current and value > current[name]:
                raise LimitsError(f"limit {name!r} {current[name]} -> {value} loosens it: only RISK_OFFICER may")
        return Limits.from_map({**current, **values})

    def _scalars(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in _scalar_fields()}


_OPTIONAL = frozenset({"stale_price_ns", "max_gross_exposure", "max_open_orders"})
_SCALAR_LIMITS = frozenset(f.name for f in fields(Limits) if f.name not in ("sector_caps", "asset_class_caps"))
"""Every scalar limit a command may name, whether or not the mandate sets it."""
_FIXED = frozenset({"capital", MANDATE_VERSION})
"""Set by the mandate only, never by a command."""
_UNSCALED = _FIXED | {"allow_short", "stale_price_ns"}
"""Left alone by the ``*`` scale."""


def _scalar_fields() -> list[str]:
    return [f.name for f in fields(Limits) if f.name not in ("sector_caps", "asset_class_caps", "mandate_version")]


def _opt(value: Any) -> float | None:
    return None if value is None else float(value)
