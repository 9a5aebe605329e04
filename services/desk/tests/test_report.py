"""The run report built from a hand-made record of a run: attribution over the run, time in each trading state."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from quorum_common.bus.message import Message
from quorum_desk.metrics import NS_PER_DAY as DAY
from quorum_desk.metrics import NS_PER_YEAR
from quorum_desk.officer import OFFICER_ID
from quorum_desk.recorder import RunRecorder
from quorum_desk.report import build_report

T0 = 1_104_710_400 * 10**9  # 2005-01-03


def msg(topic: str, value: dict) -> Message:
    """A delivered record of ``topic``."""
    return Message(topic, None, value, "test")


def agent(agent_id: str, strategy: str, pnl: float, signals: int, hits: int = 0, scored: int = 0) -> dict:
    """One ``AgentAttribution`` entry of a critic report (``hits`` right of the ``scored`` signals)."""
    return {"agent_id": agent_id, "strategy": strategy, "pnl_contribution": pnl,
            "hit_rate": hits / scored if scored else None, "scored_signals": scored, "signals": signals,
            "avg_weight": None}


def state(ts: int, name: str, reason: str, by: str = "risk") -> Message:
    """A ``control.state`` record."""
    return msg("control.state", {"ts_event": ts, "state": name, "reason": reason, "changed_by": by})


def recorder(states: list[Message], days: int = 730) -> RunRecorder:
    """A run of ``days`` daily snapshots (NAV up 0.01 % a day) with ``states`` and two critic windows."""
    rec = RunRecorder()
    rec.record(msg("mandate.compiled", {"ts_event": T0, "mandate_id": "default", "capital": 1e6,
                                        "max_drawdown": 0.15, "base_currency": "USD", "universe": []}))
    for m in states:
        rec.record(m)
    for day in range(days):
        rec.record(msg("portfolio.snapshots", {"ts_event": T0 + day * DAY, "nav": 1e6 * 1.0001 ** day,
                                               "drawdown": 0.0}))
    rec.record(msg("critic.reports", {"ts_event": T0 + days // 2 * DAY, "attribution": [
        agent("alpha.momentum.breakout", "MOMENTUM", 120.0, 30, hits=2, scored=3),
        agent("alpha.pairs.KO_PEP", "PAIRS", -50.0, 4)]}))
    rec.record(msg("critic.reports", {"ts_event": T0 + (days - 1) * DAY, "attribution": [
        agent("alpha.momentum.breakout", "MOMENTUM", -20.0, 10, hits=1, scored=7),
        agent("unattributed", "OTHER", 7.5, 0)]}))
    return rec


def report(rec: RunRecorder, out: Path) -> tuple[dict, str]:
    """The metrics written and the HTML page."""
    build_report(rec, out, "t", 1.0, 100)
    return json.loads((out / "metrics.json").read_text()), (out / "index.html").read_text()


def test_attribution_sums_every_critic_window_not_just_the_last(tmp_path: Path) -> None:
    metrics, page = report(recorder([state(T0, "ACTIVE", "MANDATE: default v1 limits applied")]), tmp_path)
    assert metrics["critic_reports"] == 2
    by_agent = {a["agent_id"]: a for a in metrics["attribution"]}
    assert by_agent["alpha.momentum.breakout"]["pnl_contribution"] == pytest.approx(100.0)
    assert by_agent["alpha.momentum.breakout"]["signals"] == 40
    # 3 of 10 scored signals right over the run: not the mean of the windows' rates (2/3 and 1/7)
    assert (by_agent["alpha.momentum.breakout"]["hit_rate"], by_agent["alpha.momentum.breakout"]["scored_signals"]) \
        == (pytest.approx(0.3), 10)
    assert by_agent["alpha.pairs.KO_PEP"] == {"agent_id": "alpha.pairs.KO_PEP", "strategy": "PAIRS",
                                              "pnl_contribution": -50.0, "signals": 4, "hit_rate": None,
                                              "scored_signals": 0}
    assert by_agent["unattributed"]["pnl_contribution"] == 7.5
    assert "<td>alpha.momentum.breakout</td><td>MOMENTUM</td><td>100</td><td>40</td><td>30.0% of 10</td>" in page


def test_a_run_that_ends_locked_says_since_when_and_for_how_long(tmp_path: Path) -> None:
    lock, tighten = T0 + 100 * DAY, T0 + 400 * DAY
    rec = recorder([state(T0, "ACTIVE", "MANDATE: default v1 limits applied"),
                    state(lock, "REDUCING", "DRAWDOWN_LOCK: drawdown 0.123 >= lock 0.12"),
                    state(tighten, "REDUCING", "COMMAND: TIGHTEN_LIMITS by critic", by="critic")])
    metrics, page = report(rec, tmp_path)
    end = T0 + 729 * DAY
    assert metrics["final_trading_state"] == {"state": "REDUCING", "since_ts": lock, "by": "risk",
                                              "reason": "DRAWDOWN_LOCK: drawdown 0.123 >= lock 0.12"}
    years = metrics["years_in_trading_state"]
    assert years["ACTIVE"] == pytest.approx(100 * DAY / NS_PER_YEAR)
    assert years["REDUCING"] == pytest.approx((end - lock) / NS_PER_YEAR)
    assert "ended the run REDUCING, as it had been since 2005-04-13" in page
    assert f"the last {(end - lock) / NS_PER_YEAR:.1f} of the run" in page


def test_a_run_that_ends_active_has_no_lock_note(tmp_path: Path) -> None:
    rec = recorder([state(T0, "ACTIVE", "MANDATE: default v1 limits applied"),
                    state(T0 + 100 * DAY, "REDUCING", "DRAWDOWN_LOCK: drawdown 0.123 >= lock 0.12"),
                    state(T0 + 200 * DAY, "ACTIVE", "COMMAND: RESUME_TRADING by officer", by="officer")])
    metrics, page = report(rec, tmp_path)
    assert metrics["final_trading_state"]["state"] == "ACTIVE"
    assert metrics["final_trading_state"]["since_ts"] == T0 + 200 * DAY
    assert metrics["years_in_trading_state"]["REDUCING"] == pytest.approx(100 * DAY / NS_PER_YEAR)
    assert "ended the run" not in page


def test_a_breach_after_the_simulated_officer_resumed_says_so(tmp_path: Path) -> None:
    rec = recorder([state(T0, "ACTIVE", "MANDATE: default v1 limits applied"),
                    state(T0 + 50 * DAY, "REDUCING", "DRAWDOWN_LOCK: drawdown 0.121 >= lock 0.12"),
                    state(T0 + 80 * DAY, "ACTIVE", "COMMAND: RESUME_TRADING", by=OFFICER_ID)], days=0)
    for day in range(200):  # down 0.2 % a day: about a third lost
        rec.record(msg("portfolio.snapshots", {"ts_event": T0 + day * DAY, "nav": 1e6 * 0.998 ** day,
                                               "drawdown": 1 - 0.998 ** day}))
    metrics, page = report(rec, tmp_path)
    assert not metrics["drawdown_within_limit"]
    assert "The simulated risk officer (--resume-after-days) resumed trading 1 time, first on 2005-03-24" in page


def test_mandate_symbols_without_a_bar_in_the_replay_are_named(tmp_path: Path) -> None:
    rec = recorder([state(T0, "ACTIVE", "MANDATE: default v1 limits applied")])
    rec.mandate = {**rec.mandate, "universe": [{"symbol": "KO"}, {"symbol": "EUR-USD"}, {"symbol": "PEP"}]}
    rec.record(msg("md.bars", {"ts_event": T0, "symbol": "KO", "close": 40.0}))
    metrics, page = report(rec, tmp_path)
    assert metrics["universe_without_bars"] == ["EUR-USD", "PEP"]
    assert "No bar in the replay for EUR-USD, PEP (in the mandate&#x27;s universe): the desk could not trade them" \
        in page
    rec.record(msg("md.bars", {"ts_event": T0, "symbol": "PEP", "close": 60.0}))
    metrics, page = report(rec, tmp_path / "again")
    assert metrics["universe_without_bars"] == ["EUR-USD"] and "could not trade it in" in page
    rec.mandate = {**rec.mandate, "universe": [{"symbol": "KO"}]}
    assert report(rec, tmp_path / "all")[0]["universe_without_bars"] == []


def test_mandate_symbols_whose_bars_end_before_the_window_are_named_with_their_last_date(tmp_path: Path) -> None:
    rec = recorder([state(T0, "ACTIVE", "MANDATE: default v1 limits applied")], days=120)
    rec.mandate = {**rec.mandate, "universe": [{"symbol": "KO"}, {"symbol": "PEP"}, {"symbol": "BTC-USD"}]}
    for day in range(120):  # the run's snapshots go to day 119
        rec.record(msg("md.bars", {"ts_event": T0 + day * DAY, "symbol": "PEP", "close": 60.0}))
        if day < 60:
            rec.record(msg("md.bars", {"ts_event": T0 + day * DAY, "symbol": "KO", "close": 40.0}))
    rec.record(msg("md.bars", {"ts_event": T0 + 90 * DAY, "symbol": "BTC-USD", "close": 1e4}))  # 29 days before
    metrics, page = report(rec, tmp_path)
    assert metrics["universe_bars_ended"] == {"KO": "2005-03-03"}  # day 59
    assert "end before the window does: KO on 2005-03-03. From then on the desk held them at their last price" in page
