"""The critic's review window and the recommendations of its report."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from quorum_critic.config import CriticSettings
from quorum_critic.slippage import SlippageBook


@dataclass
class ReportWindow:
    """What happened since the last report."""

    start_ns: int | None = None
    slippage: SlippageBook = field(default_factory=SlippageBook)
    orders: int = 0
    rejects: int = 0
    fees: float = 0.0
    notional: float = 0.0
    navs: list[float] = field(default_factory=list)
    regime_shift: bool = False
    tightened: dict[str, float] | None = None
    notes: list[str] = field(default_factory=list)

    def touch(self, ts_event: int) -> None:
        """Start the window at the first event it sees."""
        if self.start_ns is None:
            self.start_ns = ts_event


def recommendations(settings: CriticSettings, slippage: dict[str, Any], attribution: list[dict[str, Any]],
                    regime: str, drawdown: float, soft_limit: float | None, notes: list[str]) -> list[str]:
    """Human-readable recommendations, in a fixed order so replays reproduce them."""
    out = list(notes)
    mean = slippage["mean_bps"]
    if mean is not None and mean > settings.slippage_alert_bps:
        out.append(f"mean slippage {mean:.1f} bps exceeds {settings.slippage_alert_bps:.1f} bps: "
                   "prefer TWAP or smaller orders")
    for agent in attribution:
        hit = agent["hit_rate"]
        if agent["pnl_contribution"] < 0 and hit is not None and hit < 0.5:
            out.append(f"agent {agent['agent_id']} lost {-agent['pnl_contribution']:.2f} with hit rate {hit:.0%}: "
                       "consider lowering its ensemble weight")
    if regime in settings.tighten_on_labels:
        out.append(f"regime {regime}: keep limits tightened")
    if soft_limit is not None and drawdown >= soft_limit:
        out.append(f"drawdown {drawdown:.2%} at or beyond the soft limit {soft_limit:.2%}")
    return out
