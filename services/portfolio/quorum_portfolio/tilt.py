"""Tilting the optimiser's weights by the ensemble's decisions, then re-applying the caps.

For a decision on symbol ``i`` with action BUY / STRONG_BUY / SELL / STRONG_SELL and score ``s``
(the decision's ``combined_score``, clamped to −1..+1): ``w_i' = max(0, w_i × (1 + tilt × s))``; a
STRONG_SELL cuts ``w_i'`` to 0 when ``strong_sell_to_zero``; HOLD leaves ``w_i``. The tilt only scales
what the optimiser chose (a zero weight stays zero). Then the caps are re-applied (per instrument,
then each sector and asset class scaled down to its cap) and, if the weights sum above ``budget``, all
are scaled down to it. Weight freed by sells stays in cash: the tilt never levers up.

Last, :func:`within_limits` brings the targets within the risk service's limits in force (position and gross
exposure), which the critic may have tightened below the mandate's. :func:`tilts` says, per symbol, how much of
the target the tilt accounts for, against the same weights tilted by no decision (the critic's attribution).
"""

from __future__ import annotations

from dataclasses import dataclass

from quorum_portfolio.optimiser import Problem, scale_to_caps

TILTED_ACTIONS = ("STRONG_BUY", "BUY", "SELL", "STRONG_SELL")


@dataclass(frozen=True)
class Decision:
    """The latest ensemble decision on one symbol."""

    decision_id: str
    correlation_id: str
    action: str
    score: float
    ts_event: int

    @property
    def moves_target(self) -> bool:
        """Whether its action tilts the symbol's target (a HOLD does not)."""
        return self.action in TILTED_ACTIONS


def apply_caps(weights: dict[str, float], caps: Problem, budget: float = 1.0) -> dict[str, float]:
    """Scale weights down to every instrument, sector and asset-class cap, then to ``budget`` in total."""
    w = scale_to_caps(weights, caps)
    total = sum(w.values())
    return {s: v * budget / total for s, v in w.items()} if total > budget > 0 else w


def tilt_weights(weights: dict[str, float], decisions: dict[str, Decision], tilt: float, caps: Problem,
                 strong_sell_to_zero: bool = True, budget: float = 1.0) -> dict[str, float]:
    """The optimiser's ``weights`` tilted by ``decisions`` and brought back within the caps and ``budget``."""
    out = dict(weights)
    for symbol, d in decisions.items():
        if symbol not in out or not d.moves_target:
            continue
        score = max(-1.0, min(1.0, d.score))
        out[symbol] = 0.0 if d.action == "STRONG_SELL" and strong_sell_to_zero else max(
            0.0, out[symbol] * (1.0 + tilt * score))
    return apply_caps(out, caps, budget)


@dataclass(frozen=True)
class Tilt:
    """What the ensemble made of one symbol's target: the decision that tilted it and the target's share owed to
    that tilt (the ``tilt_decision_id`` and ``tilt_share`` of its orders)."""

    decision_id: str | None
    share: float | None
    """``(target - untilted) / target``: negative when the tilt cut the position, 0 without a tilting decision
    (weight the caps moved over from other symbols' tilts stays the allocation's), None for a zero target."""


def tilts(targets: dict[str, float], untilted: dict[str, float], decisions: dict[str, Decision]) -> dict[str, Tilt]:
    """Each symbol's :class:`Tilt`, from its weights with the decisions' tilt (``targets``) and without any
    (``untilted``, brought within the same caps and limits; a common scale of both leaves the shares as they are)."""
    out: dict[str, Tilt] = {}
    for symbol in sorted(set(targets) | set(untilted)):
        decision = decisions.get(symbol)
        tilted_by = decision.decision_id if decision is not None and decision.moves_target else None
        target = targets.get(symbol, 0.0)
        if target <= 0.0:
            out[symbol] = Tilt(tilted_by, None)
        else:
            out[symbol] = Tilt(tilted_by, 0.0 if tilted_by is None else (target - untilted.get(symbol, 0.0)) / target)
    return out


@dataclass(frozen=True)
class RiskLimits:
    """The risk service's limits in force that bound what the rebalance proposes (``control.state``'s ``limits``)."""

    max_position_weight: float | None = None
    max_gross_exposure: float | None = None
    stale_price_ns: float | None = None
    """Orders on a symbol whose last bar is older than this are refused (``STALE_PRICE``)."""
    drawdown_lock: float | None = None
    """The drawdown at which the lock moves the desk to REDUCING next (where the targets' drawdown scale reaches 0)."""

    @classmethod
    def from_state(cls, state: dict) -> RiskLimits:
        """The limits of a ``control.state`` record (a missing one does not bind); the drawdown lock is where it
        fires next: ``drawdown_lock_at`` after a resume beyond the lock, else the ``drawdown_lock`` limit."""
        limits = state["limits"]
        return cls(limits.get("max_position_weight"), limits.get("max_gross_exposure"), limits.get("stale_price_ns"),
                   state.get("drawdown_lock_at") or limits.get("drawdown_lock"))


def within_limits(weights: dict[str, float], limits: RiskLimits) -> dict[str, float]:
    """Weights cut to the position limit, then all scaled down to the gross exposure limit (long-only weights).

    The critic may tighten both while the desk runs; targets above them would only give orders the risk
    service refuses (``MAX_POSITION``, ``GROSS_EXPOSURE``), so the rebalance trades to what it may hold.
    """
    cap = limits.max_position_weight
    w = {s: min(v, cap) for s, v in weights.items()} if cap is not None else dict(weights)
    total, gross = sum(w.values()), limits.max_gross_exposure
    return {s: v * gross / total for s, v in w.items()} if gross is not None and total > gross > 0 else w


def fresh_decisions(decisions: dict[str, Decision], now_ns: int, max_age_ns: int) -> dict[str, Decision]:
    """The decisions no older than ``max_age_ns`` at event time ``now_ns`` (a silent manager stops tilting)."""
    return {s: d for s, d in decisions.items() if now_ns - d.ts_event <= max_age_ns}
