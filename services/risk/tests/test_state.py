"""The trading state machine: commands, roles, the drawdown lock, limits, restart and determinism."""

from __future__ import annotations

import pytest
from quorum_common.bus.message import Message
from quorum_common.runtime.config import ConfigError, load_settings
from quorum_risk import testing as t
from quorum_risk.config import RiskSettings
from quorum_risk.testing import Harness, market

LATER = t.T0 + 1_000_000


def verdict(h: Harness, order: dict) -> str:
    d = h.decide(order)
    assert (order["client_order_id"] in h.approved()) == (d["verdict"] == "APPROVED")
    return d["reason_code"]


def holding(h: Harness, qty: float = 500.0, drawdown: float = 0.0, seq: int = 1, ts: int = t.T0 + 1) -> Harness:
    return h.send("portfolio.snapshots", t.snapshot({"JPM": (qty, 100.0)}, drawdown=drawdown, sequence=seq, ts=ts))


def test_state_changes_are_published_with_increasing_sequence_on_key_desk(h: Harness) -> None:
    h.send("control.commands", t.command("HALT_TRADING"))
    h.send("control.commands", t.command("RESUME_TRADING", role="RISK_OFFICER", ts=t.T0 + 5))
    states = h.states()
    assert [s["sequence"] for s in states] == [1, 2, 3]  # mandate limits, halt, resume
    assert [(s["previous_state"], s["state"]) for s in states[1:]] == [("ACTIVE", "HALTED"), ("HALTED", "ACTIVE")]
    assert states[1]["changed_by"] == "alice" and states[1]["command_event_id"] is not None
    assert states[0]["limits"]["max_position_weight"] == 0.10
    assert states[0]["limits"]["sector_cap.Information Technology"] == 0.15


def test_halt_rejects_every_order_even_reducing_ones(h: Harness) -> None:
    holding(h)
    h.send("control.commands", t.command("HALT_TRADING"))
    assert verdict(h, t.order("buy", symbol="JPM")) == "TRADING_HALTED"
    assert verdict(h, t.order("sell", symbol="JPM", side="SELL")) == "TRADING_HALTED"
    assert h.engine.state == "HALTED" and h.decisions()[-1]["trading_state"] == "HALTED"


@pytest.mark.parametrize("role", ["OPERATOR", "VIEWER", "SYSTEM"])
def test_resume_by_anyone_but_a_risk_officer_is_refused_and_dead_lettered(h: Harness, role: str) -> None:
    h.send("control.commands", t.command("HALT_TRADING"))
    n = len(h.states())
    h.send("control.commands", t.command("RESUME_TRADING", role=role, ts=t.T0 + 5))
    assert h.engine.state == "HALTED" and len(h.states()) == n
    assert h.refused() and "RESUME_TRADING" in h.refused()[-1] and role in h.refused()[-1]
    assert verdict(h, t.order("o")) == "TRADING_HALTED"


def test_viewer_cannot_halt(h: Harness) -> None:
    h.send("control.commands", t.command("HALT_TRADING", role="VIEWER"))
    assert h.engine.state == "ACTIVE" and "VIEWER" in h.refused()[-1]


def test_reduce_only_admits_only_orders_that_reduce_the_book_position(h: Harness) -> None:
    holding(h, qty=500.0)
    h.send("control.commands", t.command("REDUCE_ONLY"))
    assert verdict(h, t.order("buy", symbol="JPM", quantity=1)) == "REDUCE_ONLY"
    assert verdict(h, t.order("other", symbol="AAPL", side="SELL", quantity=1)) == "REDUCE_ONLY"  # no position
    assert verdict(h, t.order("s1", symbol="JPM", side="SELL", quantity=300)) == "OK"
    assert verdict(h, t.order("s2", symbol="JPM", side="SELL", quantity=200.01)) == "REDUCE_ONLY"  # 300 in flight
    assert verdict(h, t.order("s3", symbol="JPM", side="SELL", quantity=200)) == "OK"


def test_flatten_moves_to_reducing_but_cannot_loosen_a_halt_without_a_risk_officer(h: Harness) -> None:
    h.send("control.commands", t.command("FLATTEN"))
    assert h.engine.state == "REDUCING" and h.states()[-1]["reason"].startswith("COMMAND: FLATTEN")
    h.send("control.commands", t.command("HALT_TRADING", ts=t.T0 + 3))
    h.send("control.commands", t.command("FLATTEN", ts=t.T0 + 4))
    assert h.engine.state == "HALTED" and "loosens" in h.refused()[-1]
    h.send("control.commands", t.command("FLATTEN", role="RISK_OFFICER", ts=t.T0 + 5))
    assert h.engine.state == "REDUCING"


def test_drawdown_lock_reducing_until_a_risk_officer_resumes(h: Harness) -> None:
    holding(h, qty=500.0, drawdown=0.1499)
    assert h.engine.state == "ACTIVE"
    holding(h, qty=500.0, drawdown=0.15, seq=2, ts=t.T0 + 3)
    assert h.engine.state == "REDUCING" and h.states()[-1]["reason"].startswith("DRAWDOWN_LOCK")
    assert h.states()[-1]["drawdown"] == 0.15
    d = h.decide(t.order("buy", symbol="JPM", quantity=1, ts=t.T0 + 4))
    assert (d["verdict"], d["reason_code"]) == ("REJECTED", "DRAWDOWN_LOCK") and "buy" not in h.approved()
    assert verdict(h, t.order("sell", symbol="JPM", side="SELL", quantity=100, ts=t.T0 + 4)) == "OK"
    h.send("control.commands", t.command("RESUME_TRADING", role="OPERATOR", ts=t.T0 + 5))
    assert h.engine.state == "REDUCING"
    h.send("control.commands", t.command("RESUME_TRADING", role="RISK_OFFICER", ts=t.T0 + 6))
    assert h.engine.state == "ACTIVE"
    assert verdict(h, t.order("buy2", symbol="JPM", quantity=1, ts=t.T0 + 7)) == "OK"


def resume(h: Harness, ts: int) -> Harness:
    return h.send("control.commands", t.command("RESUME_TRADING", role="RISK_OFFICER", ts=ts))


def test_a_resume_beyond_the_lock_moves_the_lock_a_step_deeper_until_the_drawdown_recovers(h: Harness) -> None:
    holding(h, drawdown=0.2)  # the lock limit is 0.15, the relock step 0.03 by default
    resume(h, t.T0 + 2)
    assert h.states()[-1]["drawdown_lock_at"] == pytest.approx(0.23)
    assert h.engine.drawdown_lock_level == pytest.approx(0.23)
    holding(h, drawdown=0.2299, seq=2, ts=t.T0 + 3)
    assert h.engine.state == "ACTIVE"  # the officer resumed knowingly, at 0.20
    holding(h, drawdown=0.23, seq=3, ts=t.T0 + 4)
    assert h.engine.state == "REDUCING" and h.states()[-1]["reason"] == "DRAWDOWN_LOCK: drawdown 0.23 >= lock 0.23"
    assert verdict(h, t.order("buy", symbol="JPM", quantity=1, ts=t.T0 + 5)) == "DRAWDOWN_LOCK"
    resume(h, t.T0 + 6)
    assert h.engine.drawdown_lock_level == pytest.approx(0.26)
    holding(h, drawdown=0.1, seq=4, ts=t.T0 + 7)  # recovered under the limit: it applies again, on the record
    last = h.states()[-1]
    assert (last["state"], last["drawdown_lock_at"], last["reason"]) == (
        "ACTIVE", None, "LOCK_REARMED: drawdown 0.1 back under lock 0.15")
    assert h.engine.drawdown_lock_level == 0.15
    holding(h, drawdown=0.16, seq=5, ts=t.T0 + 8)
    assert h.engine.state == "REDUCING"


def test_a_resume_under_the_lock_keeps_the_lock_at_the_limit(h: Harness) -> None:
    holding(h, drawdown=0.05)
    h.send("control.commands", t.command("HALT_TRADING", ts=t.T0 + 2))
    resume(h, t.T0 + 3)
    assert h.states()[-1]["drawdown_lock_at"] is None and h.engine.drawdown_lock_level == 0.15
    holding(h, drawdown=0.15, seq=2, ts=t.T0 + 4)
    assert h.engine.state == "REDUCING"


def test_a_restarted_service_fires_the_lock_where_the_one_before_it_would_have(h: Harness) -> None:
    holding(h, drawdown=0.2)
    resume(h, t.T0 + 2)
    fresh = market(Harness())
    fresh.engine.restore(Message("control.state", "desk", s, "quorum.v1.TradingStateChanged") for s in h.states())
    assert (fresh.engine.state, fresh.engine.drawdown_lock_level) == ("ACTIVE", pytest.approx(0.23))
    holding(fresh, drawdown=0.22, seq=2, ts=t.T0 + 3)
    assert fresh.engine.state == "ACTIVE"
    holding(fresh, drawdown=0.23, seq=3, ts=t.T0 + 4)
    assert fresh.engine.state == "REDUCING"


def test_tighten_limits_scales_down_and_refuses_loosening(h: Harness) -> None:
    h.send("control.commands", t.command("TIGHTEN_LIMITS", role="SYSTEM", limits={"max_position_weight": 0.5}))
    assert h.engine.limits.max_position_weight == pytest.approx(0.05)
    assert h.states()[-1]["limits"]["max_position_weight"] == pytest.approx(0.05)
    assert verdict(h, t.order("in", symbol="JPM", quantity=500)) == "OK"
    assert verdict(h, t.order("out", symbol="JPM", quantity=0.01)) == "MAX_POSITION"
    h.send("control.commands", t.command("TIGHTEN_LIMITS", role="RISK_OFFICER", ts=t.T0 + 3,
                                         limits={"max_position_weight": 1.5}))
    assert "tighten only" in h.refused()[-1] and h.engine.limits.max_position_weight == pytest.approx(0.05)


def test_tighten_all_scales_every_cap(h: Harness) -> None:
    h.send("control.commands", t.command("TIGHTEN_LIMITS", limits={"*": 0.5}))
    lim = h.engine.limits
    assert (lim.max_order_notional, lim.sector_caps["Information Technology"], lim.capital) == (50_000, 0.075, 1e6)


def test_set_limits_loosens_only_for_a_risk_officer(h: Harness) -> None:
    h.send("control.commands", t.command("SET_LIMITS", limits={"max_position_weight": 0.2}))
    assert "only RISK_OFFICER" in h.refused()[-1] and h.engine.limits.max_position_weight == 0.10
    h.send("control.commands", t.command("SET_LIMITS", ts=t.T0 + 3, limits={"max_position_weight": 0.08}))
    assert h.engine.limits.max_position_weight == 0.08
    h.send("control.commands", t.command("SET_LIMITS", role="RISK_OFFICER", ts=t.T0 + 4,
                                         limits={"max_position_weight": 0.2}))
    assert h.engine.limits.max_position_weight == 0.2
    assert verdict(h, t.order("big", symbol="JPM", quantity=1000, ts=t.T0 + 5)) == "OK"


@pytest.mark.parametrize("limits", [{"nonsense": 1.0}, {"capital": 1.0}, {"max_order_notional": -1.0}, None])
def test_invalid_limit_commands_are_refused(h: Harness, limits: dict | None) -> None:
    h.send("control.commands", t.command("SET_LIMITS", role="RISK_OFFICER", limits=limits))
    assert h.refused() and len(h.states()) == 1


def test_command_for_another_desk_is_refused(h: Harness) -> None:
    h.send("control.commands", t.command("HALT_TRADING", desk="other"))
    assert h.engine.state == "ACTIVE" and "desk" in h.refused()[-1]


def test_restart_resumes_state_and_limits_from_control_state(h: Harness) -> None:
    h.send("control.commands", t.command("TIGHTEN_LIMITS", limits={"max_position_weight": 0.5}))
    h.send("control.commands", t.command("HALT_TRADING", ts=t.T0 + 3))
    history = [Message("control.state", "desk", s, "quorum.v1.TradingStateChanged") for s in h.states()]
    history.append(Message("mandate.compiled", "m1", t.mandate(), "quorum.v1.MandateCompiled"))  # same version
    fresh = Harness()
    fresh.engine.restore(reversed(history))  # order of the compacted history does not matter
    assert (fresh.engine.state, fresh.engine.sequence) == ("HALTED", 3)
    assert sum(fresh.bus.published.values()) == 0  # restoring publishes nothing
    assert fresh.engine.limits == h.engine.limits and fresh.engine.limits.max_position_weight == pytest.approx(0.05)
    fresh.send("md.bars", t.bar("JPM", 100.0, ts=LATER))
    assert verdict(fresh, t.order("after", symbol="JPM", ts=LATER + 2)) == "TRADING_HALTED"
    fresh.send("control.commands", t.command("RESUME_TRADING", role="RISK_OFFICER", ts=LATER + 3))
    assert fresh.states()[-1]["sequence"] == 4 and fresh.engine.state == "ACTIVE"


def test_restart_in_drawdown_lock_keeps_rejecting_with_drawdown_lock(h: Harness) -> None:
    holding(h, drawdown=0.3)
    fresh = market(Harness())
    fresh.engine.restore(Message("control.state", "desk", s, "quorum.v1.TradingStateChanged") for s in h.states())
    assert fresh.engine.state == "REDUCING"
    assert verdict(fresh, t.order("buy", symbol="JPM", ts=t.T0 + 5)) == "DRAWDOWN_LOCK"


def test_newer_mandate_version_replaces_tightened_limits(h: Harness) -> None:
    h.send("control.commands", t.command("TIGHTEN_LIMITS", limits={"max_position_weight": 0.5}))
    h.send("mandate.compiled", t.mandate(version=1, ts=t.T0 + 3))
    assert h.engine.limits.max_position_weight == pytest.approx(0.05)
    h.send("mandate.compiled", t.mandate(version=2, ts=t.T0 + 4, max_position_weight=0.2))
    assert h.engine.limits.max_position_weight == 0.2 and h.states()[-1]["reason"] == "MANDATE: m1 v2 limits applied"


def test_older_state_records_and_stale_snapshots_are_ignored(h: Harness) -> None:
    h.send("control.commands", t.command("HALT_TRADING"))
    stale = {**h.states()[0], "state": "ACTIVE"}  # sequence 1 < 2
    h.send("control.state", stale)
    assert h.engine.state == "HALTED"
    holding(h, qty=10.0, seq=5)
    holding(h, qty=999.0, seq=4)
    assert h.engine.book.positions["JPM"][0] == 10.0


def scenario() -> list[tuple[str, dict]]:
    h = market(Harness())
    out: list[tuple[str, dict]] = []
    h.bus.tap(lambda m: out.append((m.topic, m.value)))
    holding(h, qty=500.0)
    for i in range(5):
        h.send("orders.proposed", t.order(f"o{i}", symbol="JPM", quantity=100 + i))
    holding(h, qty=500.0, drawdown=0.2, seq=2, ts=t.T0 + 3)
    h.send("orders.proposed", t.order("late", symbol="JPM", ts=t.T0 + 4))
    h.send("control.commands", t.command("RESUME_TRADING", role="RISK_OFFICER", ts=t.T0 + 5))
    return out


def test_same_input_gives_the_same_output_bit_for_bit() -> None:
    first, second = scenario(), scenario()
    assert first == second
    # 500 held + 100 + 101 + 102 + 103 in flight = 0.0906 of NAV; 104 more would pass 0.10
    assert [r["client_order_id"] for topic, r in first if topic == "orders.approved"] == ["o0", "o1", "o2", "o3"]
    assert {r["reason_code"] for topic, r in first if topic == "risk.decisions"} >= {"OK", "DRAWDOWN_LOCK"}


def test_invalid_configuration_names_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUORUM_QUANTITY_DECIMALS", '{"equity": 20}')
    with pytest.raises(ConfigError, match="QUORUM_QUANTITY_DECIMALS"):
        load_settings(RiskSettings)
    monkeypatch.setenv("QUORUM_QUANTITY_DECIMALS", "{}")
    monkeypatch.setenv("QUORUM_VOLUME_WINDOW", "0")
    with pytest.raises(ConfigError, match="QUORUM_VOLUME_WINDOW"):
        load_settings(RiskSettings)
    monkeypatch.setenv("QUORUM_VOLUME_WINDOW", "20")
    monkeypatch.setenv("QUORUM_DRAWDOWN_RELOCK_STEP", "0")
    with pytest.raises(ConfigError, match="QUORUM_DRAWDOWN_RELOCK_STEP"):
        load_settings(RiskSettings)
