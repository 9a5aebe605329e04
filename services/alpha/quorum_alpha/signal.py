"""What an agent returns for one symbol: the fields of a ``SignalGenerated`` that are the agent's to set."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Signal:
    """One agent's view of one symbol at the time of the bar that triggered it."""

    agent_id: str
    strategy: str
    symbol: str
    score: float
    confidence: float
    inputs: dict[str, float] = field(default_factory=dict)
    reason: str = ""
    horizon_bars: int | None = None
    paired_symbol: str | None = None
    hedge_ratio: float | None = None
    correlation_id: str | None = None
    """Event id of the bar behind the signal when it is not the triggering bar (the other leg of a pair)."""


def clip(value: float, low: float = -1.0, high: float = 1.0) -> float:
    """``value`` limited to ``[low, high]``."""
    return low if value < low else high if value > high else value
