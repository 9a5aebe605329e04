"""Transaction costs of the paper exchange: slippage (spread, fixed, market impact) and fees."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from quorum_execution.config import ExecutionSettings, PerClass, per_class

BPS = 1e-4


@dataclass(frozen=True)
class CostModel:
    """Slippage and fees per asset class.

    Slippage of a fill, in bps: ``half_spread[class] + fixed + impact · sqrt(quantity / volume)``;
    when the bar has no volume, the participation is ``notional / adv_notional[class]`` instead.
    Fee: ``max(min_fee, notional · fee_bps[class])``.
    """

    half_spread_bps: PerClass = field(default_factory=lambda: {"default": 0.0})
    fixed_bps: float = 0.0
    impact_bps: float = 0.0
    adv_notional: PerClass = field(default_factory=lambda: {"default": 1e9})
    fee_bps: PerClass = field(default_factory=lambda: {"default": 0.0})
    min_fee: float = 0.0

    @classmethod
    def from_settings(cls, s: ExecutionSettings) -> CostModel:
        """The cost model of the service's settings."""
        return cls(s.half_spread_bps, s.slippage_bps, s.impact_bps, s.adv_notional, s.fee_bps, s.min_fee)

    def slippage_bps(self, asset_class: str, quantity: float, price: float, volume: float) -> float:
        """Slippage (always a cost, >= 0) of filling ``quantity`` at ``price`` in a bar of ``volume``."""
        if volume > 0:
            participation = quantity / volume
        else:
            participation = quantity * price / per_class(self.adv_notional, asset_class)
        spread = per_class(self.half_spread_bps, asset_class)
        return spread + self.fixed_bps + self.impact_bps * math.sqrt(participation)

    def fill_price(self, side_sign: int, asset_class: str, quantity: float, price: float, volume: float) -> float:
        """``price`` moved against the taker by the slippage (up for a buy, down for a sell)."""
        return price * (1.0 + side_sign * self.slippage_bps(asset_class, quantity, price, volume) * BPS)

    def fee(self, asset_class: str, notional: float) -> float:
        """Fee of one fill of ``notional``."""
        return max(self.min_fee, abs(notional) * per_class(self.fee_bps, asset_class) * BPS)
