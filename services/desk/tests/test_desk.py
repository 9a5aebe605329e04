"""The whole desk, embedded, on short windows of the real bundled data."""

from __future__ import annotations

import json

from quorum_common.bus.message import Message
from quorum_common.engine import envelope
from quorum_common.phases import bar_time
from quorum_desk.app import main
from quorum_desk.engine import run_embedded
from quorum_desk.report import build_report


class Collect:
    """Every record of the given topics, in delivery order."""

    def __init__(self, *topics: str) -> None:
        self.topics = set(topics)
        self.records: list[dict] = []

    def __call__(self, msg: Message) -> None:
        if msg.topic in self.topics:
            self.records.append({"topic": msg.topic, **msg.value})


def test_the_desk_trades_and_every_order_passes_through_risk(short_window) -> None:
    run = run_embedded(short_window)
    rec = run.recorder
    assert rec.mandate is not None and rec.mandate["mandate_id"] == "desk-test"
    assert rec.counts["signals.decisions"] > 0 and rec.counts["orders.proposed"] > 0
    assert rec.counts["risk.decisions"] == rec.counts["orders.proposed"], "every order gets a verdict"
    assert rec.counts["orders.approved"] == rec.approvals
    assert rec.fills > 0 and len(rec.equity) > 100
    assert run.bus.dead_letters == [], [(d.topic, d.reason, d.error) for d in run.bus.dead_letters[:5]]


def test_two_runs_of_the_same_input_decide_identically(short_window) -> None:
    first, second = Collect("signals.decisions", "orders.proposed", "exec.fills"), Collect(
        "signals.decisions", "orders.proposed", "exec.fills")
    run_embedded(short_window, extra_taps=[first])
    run_embedded(short_window, extra_taps=[second])
    assert first.records and first.records == second.records


def test_the_services_own_metrics_change_no_record(desk_window) -> None:
    """A service process registers its own metrics on its engine (``ServiceSpec.instrument``), which the
    embedded desk and the equivalence test do not; those hooks must leave every record as it is. The
    window holds regime refits after the warm-up (a dropped refit answer once changed the regime)."""
    topics = ("regime.state", "signals.raw", "signals.decisions", "orders.proposed", "risk.decisions",
              "exec.fills", "critic.reports")
    window = desk_window("2006-01-01", "2007-04-30")
    bare, instrumented = Collect(*topics), Collect(*topics)
    run_embedded(window, extra_taps=[bare])
    run_embedded(window, extra_taps=[instrumented], instrument=True)
    assert len({r["fitted_ts"] for r in bare.records if r["topic"] == "regime.state"}) > 1, "the window must refit"
    assert instrumented.records == bare.records


def test_data_after_t_changes_no_decision_before_t(desk_window) -> None:
    short, long = Collect("signals.decisions", "orders.proposed"), Collect("signals.decisions", "orders.proposed")
    run_embedded(desk_window("2006-07-01", "2007-01-31"), extra_taps=[short])
    run_embedded(desk_window("2006-07-01", "2007-03-31"), extra_taps=[long])
    cutoff = max(bar_time(r["ts_event"]) for r in short.records)
    before = [r for r in long.records if bar_time(r["ts_event"]) <= cutoff]
    assert short.records and before == short.records


def resume(ts: int, role: str) -> tuple[str, str, dict]:
    """A RESUME_TRADING command from ``role``."""
    return "control.commands", "desk", {
        **envelope(ts, "resume", role), "desk": "desk", "command": "RESUME_TRADING", "issued_by": f"test-{role}",
        "role": role, "reason": "test resume", "limits": None, "mandate_document": None, "symbols": None,
        "source_service": None}


def buy_order(coid: str, ts: int) -> tuple[str, str, dict]:
    """A risk-increasing market BUY of 100 JPM on orders.proposed."""
    return "orders.proposed", coid, {
        **envelope(ts, "order", coid), "client_order_id": coid, "portfolio_id": "main", "decision_id": None,
        "symbol": "JPM", "side": "BUY", "quantity": 100.0, "order_type": "MARKET", "limit_price": None,
        "time_in_force": "DAY", "reference_price": 40.0, "notional": 4000.0, "origin": "MANUAL",
        "reason": "test", "asset_class": "equity", "sector": "Financials", "reduces_risk": False,
        "target_weight": None, "venue": None, "exec_algo": "IMMEDIATE"}


def test_the_2008_crash_locks_the_desk_until_a_risk_officer_resumes(crash_window) -> None:
    """The lock itself, on a desk that does not shrink its targets before it (with the portfolio's exposure scaling
    the desk never reaches the lock in this window: the next test)."""
    overrides = crash_window(in_full=True)
    probe = run_embedded(overrides)
    locked = [(t, s) for t, s, _, _ in probe.recorder.states if s == "REDUCING"]
    assert locked, f"the drawdown lock never fired: {probe.recorder.states}"
    lock_ts = locked[0][0]
    # Replay with an operator's resume (refused) a month after the lock and a risk officer's two months after.
    day = 86_400 * 10**9
    verdicts = Collect("risk.decisions", "control.state", "orders.approved")
    # While locked the portfolio only proposes sells; a buy pushed straight onto orders.proposed (as a
    # buggy or rogue proposer would) must still be refused by the risk service.
    rogue = buy_order("rogue-buy", lock_ts + 20 * day + 3)
    run = run_embedded(overrides, inject=[resume(lock_ts + 30 * day + 7, "OPERATOR"), rogue,
                                          resume(lock_ts + 60 * day + 7, "RISK_OFFICER")], extra_taps=[verdicts])
    states = [r for r in verdicts.records if r["topic"] == "control.state"]
    first_lock = next(r["ts_event"] for r in states if r["state"] == "REDUCING")
    reopened = next(r for r in states if r["ts_event"] > first_lock and r["state"] == "ACTIVE")
    assert reopened["ts_event"] >= lock_ts + 60 * day, "only the risk officer's resume may reopen"
    locked_window = [r for r in verdicts.records if r["topic"] == "risk.decisions"
                     and first_lock < r["ts_event"] < reopened["ts_event"]]
    assert locked_window, "orders should have been proposed while locked"
    for verdict in locked_window:
        if verdict["verdict"] == "APPROVED":
            assert verdict["reduces_risk"], f"a risk-increasing order passed the lock: {verdict}"
    (rogue_verdict,) = [v for v in locked_window if v["client_order_id"] == "rogue-buy"]
    assert rogue_verdict["verdict"] == "REJECTED" and rogue_verdict["reason_code"] in ("DRAWDOWN_LOCK", "REDUCE_ONLY")
    assert "rogue-buy" not in {r["client_order_id"] for r in verdicts.records if r["topic"] == "orders.approved"}
    assert run.recorder.rejects


def test_in_the_2008_crash_the_desk_shrinks_its_targets_and_stays_short_of_the_lock(crash_window) -> None:
    """With the portfolio's exposure scaling (the default) the desk spends its drawdown budget gradually: it never
    reaches the drawdown lock, and it loses less than the same desk holding its targets in full until the lock."""
    runs = {"scaled": run_embedded(crash_window()), "in_full": run_embedded(crash_window(in_full=True))}
    scaled_dd, full_dd = (max(dd for _, _, dd in runs[name].recorder.equity) for name in ("scaled", "in_full"))
    assert not [s for _, s, _, _ in runs["scaled"].recorder.states if s != "ACTIVE"]
    lock = runs["scaled"].recorder.mandate["risk_limits"]["drawdown_lock"]
    assert scaled_dd < lock <= full_dd
    assert runs["scaled"].recorder.approvals > 0, "the scaled desk still trades"


def test_report_states_the_drawdown_against_the_mandate(short_window, tmp_path) -> None:
    run = run_embedded(short_window)
    metrics = build_report(run.recorder, tmp_path, "t1", run.wall_s, run.events, run.recorder.optimiser_s)
    for name in ("index.html", "metrics.json", "equity.png", "drawdown.png", "rejects.png", "attribution.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert json.loads((tmp_path / "metrics.json").read_text())["performance"]["max_drawdown"] >= 0
    html = (tmp_path / "index.html").read_text()
    if metrics["drawdown_within_limit"]:
        assert "stayed within the mandate" in html
    else:
        assert "breached the mandate" in html and metrics["drawdown_breach"] > 0


def test_cli_refuses_a_bad_mandate_naming_the_field(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("capital: 1000000\nmax_drawdown: 1.5\nhorizon: 1y\nrisk_tolerance: moderate\n")
    assert main(["run", "--mandate", str(bad), "--reports", str(tmp_path)]) == 2
    assert "max_drawdown" in capsys.readouterr().err
