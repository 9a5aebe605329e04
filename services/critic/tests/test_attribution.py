"""Agent attribution: decision shares, position shares, snapshot PnL, hit rates."""

from __future__ import annotations

import pytest
from quorum_critic.attribution import (
    ALLOCATION,
    UNATTRIBUTED,
    AgentLedger,
    fill_shares,
    share_votes,
    target_shares,
    vote_shares,
)


def snap(**positions: tuple[float, float]) -> list[dict]:
    return [{"symbol": s, "quantity": q, "last_price": p} for s, (q, p) in positions.items()]


def test_shares_follow_contributions_and_sum_to_one(records) -> None:
    votes = [records.vote("mom", 0.6), records.vote("mr", -0.2, strategy="MEAN_REVERSION"),
             records.vote("pairs", 0.5, muted=True)]
    d = records.decision(0, "AAA", 100.0, votes)
    assert share_votes(d) == (("mom", 0.6), ("mr", -0.2))  # the muted vote carries no share
    shares = vote_shares(share_votes(d))
    assert shares == {"mom": pytest.approx(1.5), "mr": pytest.approx(-0.5)}
    assert sum(shares.values()) == pytest.approx(1.0)


def test_untraced_or_cancelling_decisions_are_unattributed(records) -> None:
    assert vote_shares(()) == {UNATTRIBUTED: 1.0}  # a decision without a vote that carries a share
    cancel = records.decision(0, "AAA", 100.0, [records.vote("a", 0.3), records.vote("b", -0.3)])
    assert vote_shares(share_votes(cancel)) == {UNATTRIBUTED: 1.0}


def test_a_fill_takes_its_decisions_shares_else_the_allocation_or_none(records) -> None:
    votes = share_votes(records.decision(0, "AAA", 100.0, [records.vote("mom", 0.6)]))
    assert fill_shares(votes, decision_named=True) == {"mom": 1.0}
    assert fill_shares(None, decision_named=False) == {ALLOCATION: 1.0}  # a rebalance order: the allocation's
    assert fill_shares(None, decision_named=True) == {UNATTRIBUTED: 1.0}  # its decision is no longer known


def test_position_pnl_is_split_by_the_shares_and_adds_up() -> None:
    ledger = AgentLedger()
    ledger.on_fill("AAA", 10.0, 100.0, {"mom": 1.5, "mr": -0.5})
    ledger.on_snapshot(snap(AAA=(10.0, 100.0)))
    ledger.on_snapshot(snap(AAA=(10.0, 110.0)))
    got = {a["agent_id"]: a["pnl_contribution"] for a in ledger.take_window()}
    assert got == {"mom": pytest.approx(150.0), "mr": pytest.approx(-50.0)}
    assert sum(got.values()) == pytest.approx(10.0 * 10.0)


def test_adding_blends_reducing_keeps_and_flipping_replaces_shares() -> None:
    ledger = AgentLedger()
    ledger.on_fill("AAA", 10.0, 100.0, {"a": 1.0})
    ledger.on_fill("AAA", 30.0, 100.0, {"b": 1.0})  # add: a 10/40, b 30/40
    ledger.on_snapshot(snap(AAA=(40.0, 100.0)))
    ledger.on_snapshot(snap(AAA=(40.0, 101.0)))
    assert {a["agent_id"]: a["pnl_contribution"] for a in ledger.take_window()} == {
        "a": pytest.approx(10.0), "b": pytest.approx(30.0)}
    ledger.on_fill("AAA", -20.0, 101.0, {"c": 1.0})  # reduce: shares kept
    ledger.on_snapshot(snap(AAA=(20.0, 101.0)))
    ledger.on_snapshot(snap(AAA=(20.0, 100.0)))
    assert {a["agent_id"]: a["pnl_contribution"] for a in ledger.take_window()} == {
        "a": pytest.approx(-5.0), "b": pytest.approx(-15.0)}
    ledger.on_fill("AAA", -30.0, 100.0, {"c": 1.0})  # flip to short 10: c owns it
    ledger.on_snapshot(snap(AAA=(-10.0, 100.0)))
    ledger.on_snapshot(snap(AAA=(-10.0, 90.0)))
    assert {a["agent_id"]: a["pnl_contribution"] for a in ledger.take_window()} == {
        "a": 0.0, "b": 0.0, "c": pytest.approx(100.0)}  # a and b held it flat from 100 to 100


def test_a_targets_shares_give_the_tilt_to_its_decisions_agents_and_the_rest_to_the_allocation(records) -> None:
    votes = share_votes(records.decision(0, "AAA", 100.0, [records.vote("mom", 0.6), records.vote("mr", -0.2)]))
    shares = target_shares(0.25, votes)
    assert shares == {ALLOCATION: 0.75, "mom": pytest.approx(0.25 * 1.5), "mr": pytest.approx(0.25 * -0.5)}
    assert sum(shares.values()) == pytest.approx(1.0)
    assert target_shares(0.0, votes) == {ALLOCATION: 1.0}  # no decision tilted the target
    assert target_shares(-0.5, None) == {ALLOCATION: 1.5, UNATTRIBUTED: -0.5}  # its decision is no longer known


def test_a_fill_at_its_targets_shares_replaces_the_positions_even_when_reducing() -> None:
    ledger = AgentLedger()
    ledger.on_fill("AAA", 100.0, 100.0, {ALLOCATION: 1.0})
    # A SELL decision tilted the next target down to 80 shares where the allocation alone held 100: share -1/4.
    ledger.on_fill("AAA", -20.0, 100.0, {ALLOCATION: 1.25, "sell": -0.25}, at_target=True)
    ledger.on_snapshot(snap(AAA=(80.0, 100.0)))
    ledger.on_snapshot(snap(AAA=(80.0, 90.0)))
    got = {a["agent_id"]: a["pnl_contribution"] for a in ledger.take_window()}
    # The allocation's 100 shares lost 1000; the tilt saved 20 shares' loss (200) and is credited with it.
    assert got == {ALLOCATION: pytest.approx(-1000.0), "sell": pytest.approx(200.0)}
    ledger.on_fill("AAA", 20.0, 90.0, {ALLOCATION: 1.0}, at_target=True)  # untilted again: all the allocation's
    ledger.on_snapshot(snap(AAA=(100.0, 90.0)))
    ledger.on_snapshot(snap(AAA=(100.0, 91.0)))
    assert {a["agent_id"]: a["pnl_contribution"] for a in ledger.take_window()} == {
        ALLOCATION: pytest.approx(100.0), "sell": 0.0}


def test_a_partial_fill_moves_the_shares_toward_the_target_as_far_as_it_moved_the_position() -> None:
    ledger = AgentLedger()
    ledger.on_fill("AAA", 100.0, 100.0, {ALLOCATION: 1.0})
    # A BUY decision tilted the target up to 200 shares where the allocation alone held 150: share 1/4. The order
    # of 100 fills 40 first (60 left): the position of 140 owns its 100 as before and 40 of the target's parts.
    target = {ALLOCATION: 0.75, "buy": 0.25}
    ledger.on_fill("AAA", 40.0, 100.0, target, at_target=True, leaves_quantity=60.0)
    # The target's 200 shares: 150 the allocation's, 50 the tilt's; 40 % of the way from (100, 0) there: (120, 20).
    ledger.on_snapshot(snap(AAA=(140.0, 100.0)))
    ledger.on_snapshot(snap(AAA=(140.0, 101.0)))
    got = {a["agent_id"]: a["pnl_contribution"] for a in ledger.take_window()}
    assert got == {ALLOCATION: pytest.approx(120.0), "buy": pytest.approx(20.0)}
    ledger.on_fill("AAA", 60.0, 101.0, target, at_target=True, leaves_quantity=0.0)  # the rest: at the target
    ledger.on_snapshot(snap(AAA=(200.0, 101.0)))
    ledger.on_snapshot(snap(AAA=(200.0, 102.0)))
    got = {a["agent_id"]: a["pnl_contribution"] for a in ledger.take_window()}
    assert got == {ALLOCATION: pytest.approx(150.0), "buy": pytest.approx(50.0)}


def test_a_partial_fill_that_opens_or_flips_a_position_takes_the_targets_shares() -> None:
    ledger = AgentLedger()
    ledger.on_fill("AAA", -50.0, 100.0, {"sell": 1.0})
    ledger.on_fill("AAA", 80.0, 100.0, {ALLOCATION: 1.0}, at_target=True, leaves_quantity=20.0)  # short 50 to long 50
    ledger.on_snapshot(snap(AAA=(30.0, 100.0)))
    ledger.on_snapshot(snap(AAA=(30.0, 101.0)))
    assert {a["agent_id"]: a["pnl_contribution"] for a in ledger.take_window()} == {ALLOCATION: pytest.approx(30.0)}


def test_a_closed_position_is_marked_at_its_last_fill() -> None:
    ledger = AgentLedger()
    ledger.on_fill("AAA", 10.0, 100.0, {"a": 1.0})
    ledger.on_snapshot(snap(AAA=(10.0, 100.0)))
    ledger.on_fill("AAA", -10.0, 104.0, {"b": 1.0})
    ledger.on_snapshot(snap())
    assert ledger.take_window() == [{"agent_id": "a", "strategy": "OTHER", "pnl_contribution": pytest.approx(40.0),
                                     "hit_rate": None, "scored_signals": 0, "signals": 0, "avg_weight": None}]


def test_positions_without_a_traced_fill_are_unattributed() -> None:
    ledger = AgentLedger()
    ledger.on_snapshot(snap(AAA=(5.0, 10.0)))
    ledger.on_snapshot(snap(AAA=(5.0, 12.0)))
    assert [(a["agent_id"], a["pnl_contribution"]) for a in ledger.take_window()] == [(UNATTRIBUTED, 10.0)]


def test_hit_rate_signals_and_weights(records) -> None:
    ledger = AgentLedger()
    votes = [records.vote("up", 0.4, weight=0.5), records.vote("down", -0.2, weight=1.5, strategy="MEAN_REVERSION"),
             records.vote("muted", 0.0, score=0.9, muted=True, strategy="PAIRS")]
    ledger.on_decision(records.decision(0, "AAA", 100.0, votes))
    ledger.on_decision(records.decision(1, "AAA", 102.0, votes))  # price rose: "up" right, "down" wrong
    ledger.on_decision(records.decision(2, "AAA", 101.0, votes))  # price fell: "up" wrong, "down" right
    ledger.on_decision(records.decision(3, "AAA", 103.0, votes))  # rose
    got = {a["agent_id"]: a for a in ledger.take_window()}
    assert got["up"]["hit_rate"] == pytest.approx(2 / 3) and got["down"]["hit_rate"] == pytest.approx(1 / 3)
    assert got["muted"]["hit_rate"] is None and got["muted"]["scored_signals"] == 0
    assert (got["up"]["scored_signals"], got["down"]["scored_signals"]) == (3, 3)
    assert got["up"]["signals"] == 4 and got["down"]["avg_weight"] == 1.5
    assert (got["up"]["strategy"], got["down"]["strategy"]) == ("MOMENTUM", "MEAN_REVERSION")
    assert ledger.take_window() == []
