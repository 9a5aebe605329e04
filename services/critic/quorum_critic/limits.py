"""Tighten-only limit scales: every published factor is at most 1, so limits only ever go down.

A scale ``<limit>_scale`` is the critic's cumulative multiplier of the mandate's risk limit
``<limit>``. Each tightening multiplies every scale by its factor (floored at ``min_scale``). The
``TIGHTEN_LIMITS`` command carries the *step* factors keyed by limit name (``max_position_weight``:
0.5 halves the risk service's current limit), which is the risk service's contract. The cumulative
scales and the absolute values they imply (base times scale, never above what was reached before,
even under a looser later mandate) are kept for the critic's report.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from quorum_critic.config import SCALE_SUFFIX


class LimitRatchet:
    """The critic's current limit scales, which only ever go down."""

    def __init__(self, factors: Mapping[str, float], min_scale: float) -> None:
        self._factors = dict(sorted(factors.items()))
        self._min = min_scale
        self.scales = {name: 1.0 for name in self._factors}
        self.absolute: dict[str, float] = {}

    def tighten(self, base_limits: Mapping[str, Any] | None) -> dict[str, float] | None:
        """Apply every factor once; the step factors to publish (limit name → factor ≤ 1), or ``None``
        when every scale is already at its floor."""
        new = {name: min(scale, max(self._min, scale * self._factors[name])) for name, scale in self.scales.items()}
        if new == self.scales:
            return None
        steps = {name.removesuffix(SCALE_SUFFIX): new[name] / old for name, old in self.scales.items()
                 if new[name] < old}
        self.scales = new
        for name, scale in new.items():
            limit = name.removesuffix(SCALE_SUFFIX)
            base = (base_limits or {}).get(limit)
            if isinstance(base, int | float) and not isinstance(base, bool) and math.isfinite(base) and base > 0:
                value = base * scale
                self.absolute[limit] = min(value, self.absolute.get(limit, value))
        return steps

    def report(self) -> dict[str, float]:
        """The cumulative scales and the absolute limits they imply (for the critic's report)."""
        return {**self.scales, **self.absolute}
