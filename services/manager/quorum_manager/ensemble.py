"""The regime-weighted ensemble vote (seed report, Part 3.3 "Manager-Ensemble").

Each vote is one agent's ``score`` in [-1, 1] with its ``confidence`` in [0, 1]. The regime in force
selects a weight per strategy family; strategies muted in that regime (mean reversion in HIGH_VOL and
CRISIS) get weight 0. The combined score is

    combined = sum(weight_i * score_i * confidence_i) / sum(weight_i)

over the active votes (present and not muted), so it stays in [-1, 1]. Thresholds map it to an
action. Seed defaults: ``final_score > 0.6`` is STRONG_BUY, ``< -0.6`` STRONG_SELL; the comparison
is strict, as in the seed, so a score of exactly 0.6 is not STRONG_BUY. The plain BUY/SELL band
(default ±0.2) is this desk's addition; setting ``buy = strong_buy`` and ``sell = strong_sell``
gives back the seed's three-way mapping.

Seed weights: in a TRENDING regime ``0.5 * ml + 0.3 * sentiment + 0.2 * stat``; in every other
regime ``0.2 * ml + 0.1 * sentiment + 0.7 * stat``. Each statistical family (momentum, mean
reversion, pairs) gets the seed's ``stat`` weight. RL and OTHER have no weight by default.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

RegimeLabel = Literal["TRENDING", "MEAN_REVERTING", "HIGH_VOL", "CRISIS", "UNKNOWN"]
Strategy = Literal["MOMENTUM", "MEAN_REVERSION", "PAIRS", "ML_FORECAST", "SENTIMENT", "RL", "OTHER"]
Action = Literal["STRONG_BUY", "BUY", "HOLD", "SELL", "STRONG_SELL"]

REGIME_LABELS: tuple[RegimeLabel, ...] = ("TRENDING", "MEAN_REVERTING", "HIGH_VOL", "CRISIS", "UNKNOWN")

_TRENDING = {"ML_FORECAST": 0.5, "SENTIMENT": 0.3, "MOMENTUM": 0.2, "MEAN_REVERSION": 0.2, "PAIRS": 0.2}
_DEFENSIVE = {"ML_FORECAST": 0.2, "SENTIMENT": 0.1, "MOMENTUM": 0.7, "MEAN_REVERSION": 0.7, "PAIRS": 0.7}


def seed_weights() -> dict[str, dict[str, float]]:
    """The seed's regime weight tables: TRENDING, and the defensive table for every other regime."""
    return {label: dict(_TRENDING if label == "TRENDING" else _DEFENSIVE) for label in REGIME_LABELS}


def seed_muted() -> dict[str, list[str]]:
    """The seed's rule: in high volatility (and crises) mean-reversion votes are ignored."""
    return {"HIGH_VOL": ["MEAN_REVERSION"], "CRISIS": ["MEAN_REVERSION"]}


class Thresholds(BaseModel):
    """Score thresholds: ``> strong_buy`` STRONG_BUY, ``> buy`` BUY, ``< strong_sell`` STRONG_SELL, ``< sell`` SELL."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    strong_buy: float = 0.6
    buy: float = 0.2
    sell: float = -0.2
    strong_sell: float = -0.6

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if not 0 < self.buy <= self.strong_buy <= 1:
            raise ValueError("need 0 < buy <= strong_buy <= 1")
        if not -1 <= self.strong_sell <= self.sell < 0:
            raise ValueError("need -1 <= strong_sell <= sell < 0")
        return self

    def action(self, score: float) -> Action:
        """The action of a combined ``score`` (strict comparisons, as in the seed)."""
        if score > self.strong_buy:
            return "STRONG_BUY"
        if score > self.buy:
            return "BUY"
        if score < self.strong_sell:
            return "STRONG_SELL"
        if score < self.sell:
            return "SELL"
        return "HOLD"


class EnsembleConfig(BaseModel):
    """Weights per regime and strategy, strategies muted per regime, and the action thresholds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    weights: dict[RegimeLabel, dict[Strategy, float]] = Field(default_factory=seed_weights)
    muted: dict[RegimeLabel, list[Strategy]] = Field(default_factory=seed_muted)
    thresholds: Thresholds = Field(default_factory=Thresholds)

    @model_validator(mode="after")
    def _weights_valid(self) -> EnsembleConfig:
        for label, table in self.weights.items():
            for strategy, w in table.items():
                if not (math.isfinite(w) and w >= 0):
                    raise ValueError(f"weights.{label}.{strategy}: must be a finite number >= 0")
        return self

    def weight(self, regime: str, strategy: str) -> tuple[float, bool]:
        """(weight, muted) of ``strategy`` in ``regime``; a regime without a table falls back to UNKNOWN's."""
        if strategy in self.muted.get(regime, ()):  # type: ignore[call-overload]
            return 0.0, True
        table = self.weights.get(regime) or self.weights.get("UNKNOWN") or {}  # type: ignore[call-overload]
        return float(table.get(strategy, 0.0)), False


@dataclass(frozen=True)
class Vote:
    """One agent's input to the vote. ``present=False`` marks an input that has not arrived (score 0)."""

    agent_id: str
    strategy: str
    score: float
    confidence: float
    signal_event_id: str | None = None
    signal_ts: int | None = None
    present: bool = True


@dataclass(frozen=True)
class Outcome:
    """The result of one vote: combined score, confidence, action and the breakdown records."""

    combined_score: float
    confidence: float
    action: Action
    breakdown: list[dict]


def absent(agent_id: str, strategy: str) -> Vote:
    """An input that did not arrive: it votes 0 with confidence 0."""
    return Vote(agent_id, strategy, 0.0, 0.0, present=False)


def vote(votes: Sequence[Vote], regime: str, config: EnsembleConfig, count_absent: bool = False) -> Outcome:
    """Combine ``votes`` under ``regime``'s weights; every vote appears in the breakdown, muted ones included.

    Absent inputs contribute 0; they enter the normalising sum of weights only when ``count_absent``
    (the seed's literal formula, where a missing sentiment dilutes the others).
    """
    weighted: list[tuple[Vote, float, bool]] = []
    for v in votes:
        w, muted = config.weight(regime, v.strategy)
        if not v.present and not count_absent:
            w = 0.0
        weighted.append((v, w, muted))
    total = sum(w for _, w, _ in weighted)
    breakdown: list[dict] = []
    combined = conf = 0.0
    for v, w, muted in weighted:
        contribution = w * v.score * v.confidence / total if total > 0 else 0.0
        combined += contribution
        conf += w * v.confidence / total if total > 0 else 0.0
        breakdown.append({
            "agent_id": v.agent_id,
            "strategy": v.strategy,
            "score": v.score,
            "confidence": v.confidence,
            "weight": w,
            "contribution": contribution,
            "muted": muted,
            "mute_reason": f"{v.strategy} muted in {regime} regime" if muted else None,
            "signal_event_id": v.signal_event_id,
            "signal_ts": v.signal_ts,
        })
    combined = _clamp(combined, -1.0, 1.0)
    return Outcome(combined, _clamp(conf, 0.0, 1.0), config.thresholds.action(combined), breakdown)


def _clamp(x: float, lo: float, hi: float) -> float:
    return min(hi, max(lo, x))

