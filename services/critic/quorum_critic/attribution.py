"""Each agent's PnL contribution, by the shares of the decisions behind the positions.

Method ("contribution shares"):

1. A decision's breakdown gives every agent a share ``c_i / sum_j c_j`` of its vote
   contributions (muted votes contribute 0). The shares sum to 1; an agent that voted against
   the net direction gets a negative share. A decision whose contributions cancel out, or one no longer
   known, gives its share to ``unattributed``; what no decision chose (the optimiser's targets, the
   exposure scales, the rebalancing policy) is ``portfolio.allocation``'s.
2. A fill of an order that gives its target's tilt (``tilt_share`` f, and the ``tilt_decision_id`` that tilted it:
   every order of the portfolio's rebalances) sets the position's shares to that target's: ``1 - f`` to
   ``portfolio.allocation`` and ``f`` to the tilting decision's agents by their shares (:func:`target_shares`).
   So the agents' PnL is what their tilt added to or took from the weights the allocation alone would have held; a
   tilt that cut a position (f < 0) earns them the loss it avoided. A partial fill moves the shares toward the
   target's as far as it moved the quantity (:meth:`AgentLedger.on_fill`), and a position no order traded keeps the
   shares of its last target. Otherwise (older records, orders to a zero target) a
   position's shares come from the decisions behind its fills (traced by the fill's ``decision_id``, else its
   ``correlation_id``; a fill of an order that names no decision is the allocation's, :func:`fill_shares`):
   opening or flipping a position takes the fill's shares, adding to it blends them by quantity, reducing it
   keeps them.
3. Between two portfolio snapshots a position's mark-to-market PnL is
   ``quantity_before * (price_now - price_before)`` (``price_now`` from the new snapshot, or the
   last fill price once the position is closed); it is split among agents by the shares the
   position had at the earlier snapshot. Fees and slippage are reported apart, not attributed.

Hit rate: when a symbol's next decision arrives, each non-muted, non-zero vote of the previous
decision was right when its sign matches the move of the reference price in between.
"""

from __future__ import annotations

import math
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

UNATTRIBUTED = "unattributed"
ALLOCATION = "portfolio.allocation"
"""The agent of the orders no decision asked for: the portfolio's own allocation."""
_EPS = 1e-12

Shares = dict[str, float]


Votes = tuple[tuple[str, float], ...]
"""The votes of a decision that carry a share: ``(agent_id, contribution)`` of each non-muted, non-zero vote."""


def share_votes(decision: dict[str, Any]) -> Votes:
    """The votes of a ``DecisionMade`` value that carry a share, agent ids interned (a cache of many decisions then
    holds each id once, and so does its pickled checkpoint)."""
    return tuple((sys.intern(vote["agent_id"]), vote["contribution"]) for vote in decision["breakdown"]
                 if not vote["muted"] and vote["contribution"] != 0)


def vote_shares(votes: Votes) -> Shares:
    """Agent shares of a decision's :func:`share_votes` (``unattributed`` when there are none or they cancel)."""
    contributions: dict[str, float] = defaultdict(float)
    for agent, contribution in votes:
        contributions[agent] += contribution
    total = sum(contributions.values())
    if abs(total) < _EPS:
        return {UNATTRIBUTED: 1.0}
    return {agent: c / total for agent, c in contributions.items()}


def fill_shares(votes: Votes | None, decision_named: bool) -> Shares:
    """Agent shares of a fill: those of the decision it was traced to (``votes``), else the portfolio's allocation
    when its order named no decision, else ``unattributed`` (it named one that is no longer known)."""
    if votes is not None:
        return vote_shares(votes)
    return {UNATTRIBUTED if decision_named else ALLOCATION: 1.0}


def target_shares(tilt_share: float, votes: Votes | None) -> Shares:
    """Agent shares of a position traded to a target of which ``tilt_share`` is owed to a decision's tilt: the rest
    to ``portfolio.allocation``, the tilt's part to the decision's agents by :func:`vote_shares` (``unattributed``
    when the decision is no longer known)."""
    if tilt_share == 0.0:
        return {ALLOCATION: 1.0}
    shares = {ALLOCATION: 1.0 - tilt_share}
    for agent, share in (vote_shares(votes) if votes is not None else {UNATTRIBUTED: 1.0}).items():
        shares[agent] = shares.get(agent, 0.0) + tilt_share * share
    return shares


def _blend(a: Shares, wa: float, b: Shares, wb: float) -> Shares:
    return {k: (a.get(k, 0.0) * wa + b.get(k, 0.0) * wb) / (wa + wb) for k in sorted(set(a) | set(b))}


@dataclass
class AgentStats:
    """One agent's figures over a review window."""

    strategy: str = "OTHER"
    pnl: float = 0.0
    hits: int = 0
    calls: int = 0
    signals: int = 0
    weight_sum: float = 0.0

    def record(self) -> dict[str, Any]:
        """Fields of an ``AgentAttribution`` record (without agent_id)."""
        return {
            "strategy": self.strategy,
            "pnl_contribution": self.pnl,
            "hit_rate": self.hits / self.calls if self.calls else None,
            "scored_signals": self.calls,
            "signals": self.signals,
            "avg_weight": self.weight_sum / self.signals if self.signals else None,
        }


@dataclass
class _Position:
    quantity: float = 0.0
    shares: Shares = field(default_factory=dict)


class AgentLedger:
    """Positions with their agent shares, marks, previous decisions, and the window's agent figures."""

    def __init__(self) -> None:
        self._positions: dict[str, _Position] = {}
        self._held: dict[str, tuple[float, float, Shares]] = {}
        """Per symbol at the last snapshot: quantity, price, shares."""
        self._last_fill_price: dict[str, float] = {}
        self._last_decision: dict[str, dict[str, Any]] = {}
        self._strategy: dict[str, str] = {UNATTRIBUTED: "OTHER", ALLOCATION: "OTHER"}
        self.window: dict[str, AgentStats] = {}

    def _agent(self, agent_id: str) -> AgentStats:
        stats = self.window.get(agent_id)
        if stats is None:
            stats = self.window[agent_id] = AgentStats(self._strategy.get(agent_id, "OTHER"))
        return stats

    def on_decision(self, decision: dict[str, Any]) -> None:
        """Count the decision's votes, and score the votes of the symbol's previous decision."""
        symbol = decision["symbol"]
        for vote in decision["breakdown"]:
            self._strategy[vote["agent_id"]] = vote["strategy"]
            stats = self._agent(vote["agent_id"])
            stats.signals += 1
            stats.weight_sum += vote["weight"]
        previous = self._last_decision.get(symbol)
        self._last_decision[symbol] = decision
        if previous is None or previous["reference_price"] <= 0:
            return
        move = decision["reference_price"] / previous["reference_price"] - 1.0
        if move == 0:
            return
        for vote in previous["breakdown"]:
            if vote["muted"] or vote["score"] == 0:
                continue
            stats = self._agent(vote["agent_id"])
            stats.calls += 1
            stats.hits += int((vote["score"] > 0) == (move > 0))

    def on_fill(self, symbol: str, signed_quantity: float, price: float, shares: Shares, at_target: bool = False,
                leaves_quantity: float = 0.0) -> None:
        """Update the position's quantity and shares with a fill. ``at_target``: ``shares`` are those of the target the
        fill's order trades to, and ``leaves_quantity`` of the order is still open after the fill. A fill that ends
        the order, opens or flips the position sets its shares to the target's; a partial fill moves them toward the
        target's as far as it moved the quantity: each agent's part of the position goes linearly from what it owns
        now to what it owns at the target."""
        self._last_fill_price[symbol] = price
        pos = self._positions.setdefault(symbol, _Position())
        before, after = pos.quantity, pos.quantity + signed_quantity
        if at_target:
            target = after + math.copysign(leaves_quantity, signed_quantity)
            if leaves_quantity < _EPS or before * target <= 0 or not pos.shares:
                pos.shares = dict(shares)
            else:  # weights: the quantity the position keeps of its own and the part of the target it took on
                done = abs(signed_quantity) / (abs(signed_quantity) + leaves_quantity)
                pos.shares = _blend(pos.shares, (1 - done) * before, shares, done * target)
        elif abs(before) < _EPS or before * after < 0 or not pos.shares:
            pos.shares = dict(shares)
        elif abs(after) > abs(before):
            pos.shares = _blend(pos.shares, abs(before), shares, abs(signed_quantity))
        pos.quantity = after
        if abs(after) < _EPS:
            del self._positions[symbol]

    def on_snapshot(self, positions: list[dict[str, Any]]) -> None:
        """Attribute each held position's PnL since the previous snapshot, then hold the new marks."""
        prices = {p["symbol"]: p["last_price"] for p in positions}
        for symbol, (quantity, price, shares) in self._held.items():
            now = prices.get(symbol, self._last_fill_price.get(symbol, price))
            pnl = quantity * (now - price)
            for agent, share in shares.items():
                self._agent(agent).pnl += pnl * share
        self._held = {}
        for p in positions:
            pos = self._positions.get(p["symbol"])
            shares = pos.shares if pos is not None and pos.shares else {UNATTRIBUTED: 1.0}
            self._held[p["symbol"]] = (p["quantity"], p["last_price"], shares)

    def take_window(self) -> list[dict[str, Any]]:
        """``AgentAttribution`` records of the window (sorted by agent), and start a new window."""
        out = [{"agent_id": agent, **stats.record()} for agent, stats in sorted(self.window.items())]
        self.window = {}
        return out
