"""Solves off the order path: the worker process gives the inline result, its weights land at the next
tick with the trigger they were solved for, and a calendar rebalance waits for them."""

from __future__ import annotations

import os
from typing import Any

import pandas as pd
import pytest
from quorum_common.bus.inprocess import InProcessBus
from quorum_common.runtime.worker import WORKER_NICENESS
from quorum_portfolio.config import PortfolioSettings
from quorum_portfolio.engine import PortfolioEngine
from quorum_portfolio.optimiser import Problem
from quorum_portfolio.solver import (
    EarlySolver,
    InlineSolver,
    ProcessSolver,
    Solved,
    SolveRequest,
    make_solver,
    same_solve,
    solve,
)

DAY = 86_400_000_000_000
T0 = 1_600_000_000 * 1_000_000_000
SYMBOLS = ["AAPL", "MSFT", "JNJ", "KO", "BTC-USD", "SPX"]
SETTINGS = {"min_history_bars": 30, "reoptimise_bars": 21, "lookback_bars": 250}


def request(records: Any, days: int = 200) -> SolveRequest:
    prices = pd.DataFrame(records.prices(SYMBOLS[:4], days, seed=3))
    problem = Problem(returns=prices.pct_change().iloc[1:], sectors=dict.fromkeys(SYMBOLS[:4], "S"),
                      asset_classes=dict.fromkeys(SYMBOLS[:4], "equity"), sector_caps={"S": 1.0})
    return SolveRequest(problem, ("CLARABEL", "SCS"), None, 252, T0, "INITIAL", ("m1", 1))


def test_the_worker_process_gives_the_inline_result(records: Any) -> None:
    req = request(records)
    worker = ProcessSolver()
    try:
        assert not worker.busy and worker.take() is None
        worker.submit(req)
        assert worker.busy
        with pytest.raises(RuntimeError, match="in flight"):
            worker.submit(req)
        assert worker.wait(120)
        (pid,) = worker._worker._pool._processes  # the one worker process
        assert os.getpriority(os.PRIO_PROCESS, pid) == os.getpriority(os.PRIO_PROCESS, 0) + WORKER_NICENESS
        done = worker.take()
        assert done is not None and done.request is req and not worker.busy and worker.take() is None
    finally:
        worker.close()
    assert done.result.weights == solve(req).weights


def test_the_inline_solver_lands_at_once_and_unknown_kinds_are_refused(records: Any) -> None:
    inline = make_solver("inline")
    assert isinstance(inline, InlineSolver)
    inline.submit(request(records))
    assert inline.busy and inline.take() is not None and not inline.busy
    with pytest.raises(ValueError, match="optimiser_worker"):
        make_solver("thread")
    with pytest.raises(ValueError, match="optimiser_worker"):
        PortfolioSettings(optimiser_worker="thread")


def drive(records: Any, engine: PortfolioEngine, days: int, after_day: Any = None,
          mandate: dict | None = None) -> list[tuple[int, str, dict]]:
    """Feed ``days`` of bars and ticks one bar time at a time; ``after_day(k)`` runs between bar times."""
    bus = InProcessBus(lockstep=True)
    engine.publisher = bus.publisher("portfolio")
    bus.subscribe("portfolio", engine.inputs, engine.on_message)
    out: list[tuple[int, str, dict]] = []
    day = [0]
    bus.tap(lambda m: out.append((day[0], m.topic, m.value)) if m.topic.startswith(("portfolio.", "orders.")) else 0)
    feed = bus.publisher("feed")
    feed.publish("mandate.compiled", mandate or records.mandate(), key="m1")
    prices = records.prices(SYMBOLS, days, seed=7)
    for k in range(days):
        day[0] = k
        t = T0 + (k + 1) * DAY
        for s in SYMBOLS:
            feed.publish("md.bars", records.bar(s, t, float(prices[s][k])), key=s)
        for tick in records.ticks(t, 10 * k):
            feed.publish("sys.clock", tick, key="XNYS")
        bus.run()
        if after_day is not None:
            after_day(k)
    return out


def first(out: list[tuple[int, str, dict]], topic: str) -> tuple[int, dict]:
    return next((k, v) for k, t, v in out if t == topic)


def test_with_a_worker_the_weights_land_at_the_next_tick_with_their_trigger(records: Any) -> None:
    inline = PortfolioEngine(PortfolioSettings(**SETTINGS), None)  # type: ignore[arg-type]
    inline_out = drive(records, inline, 45)
    engine = PortfolioEngine(PortfolioSettings(**SETTINGS, optimiser_worker="process"), None)  # type: ignore[arg-type]
    try:
        out = drive(records, engine, 45, after_day=lambda k: engine.solver.wait(120))
    finally:
        engine.solver.close()
    day_inline, targets_inline = first(inline_out, "portfolio.targets")
    day, targets = first(out, "portfolio.targets")
    assert day == day_inline + 1
    assert targets["trigger"] == targets_inline["trigger"] == "INITIAL"
    weights = {e["symbol"]: e["weight"] for e in targets["targets"]}
    assert weights == {e["symbol"]: e["weight"] for e in targets_inline["targets"]}
    assert all(k > day_inline for k, t, _ in out if t == "orders.proposed")
    orders = [(v["symbol"], v["side"]) for k, t, v in out if t == "orders.proposed" and k == day]
    assert orders and orders == [(v["symbol"], v["side"]) for k, t, v in inline_out
                                 if t == "orders.proposed" and k == day_inline]


class HeldSolver:
    """Solves inline, but holds a calendar solve's result back for ``hold`` ticks (a slow solve, made
    deterministic)."""

    def __init__(self, hold: int) -> None:
        self._inner = InlineSolver()
        self.hold_for = hold
        self._hold = 0
        self.submitted: list[SolveRequest] = []

    @property
    def busy(self) -> bool:
        return self._inner.busy

    def submit(self, req: SolveRequest) -> None:
        self.submitted.append(req)
        self._hold = self.hold_for if req.trigger == "CALENDAR" else 0
        self._inner.submit(req)

    def take(self) -> Solved | None:
        if self._hold > 0:
            self._hold -= 1
            return None
        return self._inner.take()

    def wait(self, timeout_s: float) -> bool:
        return True

    def close(self) -> None:
        """Nothing to release."""


def test_a_calendar_rebalance_waits_for_the_weights_solved_for_it(records: Any) -> None:
    engine = PortfolioEngine(PortfolioSettings(**SETTINGS), None)  # type: ignore[arg-type]
    engine.solver = held = HeldSolver(hold=2)
    policy = {"calendar_days": 20, "drift_band": 1.0, "cooldown_days": 5, "min_trade_value": 500.0,
              "lookback_days": 250}
    out = drive(records, engine, 90, mandate=records.mandate(rebalance=policy))
    asked = [i for i, r in enumerate(held.submitted) if r.trigger == "CALENDAR"]
    assert asked, "no calendar re-solve in the window"
    cal = next(k for k, t, v in out if t == "portfolio.snapshots" and v["ts_event"] >= held.submitted[asked[0]].ts)
    # While its weights are computed (two ticks), the calendar rebalance waits: no order, no targets.
    assert not [1 for k, t, _ in out if t in ("orders.proposed", "portfolio.targets") and cal <= k < cal + 2]
    landed = [(k, v) for k, t, v in out if t == "portfolio.targets" and k > cal]
    assert landed[0][0] == cal + 2 and landed[0][1]["trigger"] == "CALENDAR"
    assert next(k for k, t, _ in out if t == "orders.proposed" and k > cal) == cal + 2
    assert [k for k, t, _ in out if t == "portfolio.snapshots"] == list(range(90))  # one snapshot every tick


def test_an_early_solver_adopts_the_early_start_only_for_the_same_solve(records: Any) -> None:
    req = request(records)
    other = SolveRequest(req.problem, req.solvers, {"AAPL": 1.0}, req.periods_per_year, req.ts, req.trigger,
                         req.mandate_key)
    same_later = SolveRequest(req.problem, req.solvers, None, req.periods_per_year, req.ts + 2, "CALENDAR",
                              req.mandate_key)
    assert same_solve(req, same_later) and not same_solve(req, other)
    early = make_solver("early")
    assert isinstance(early, EarlySolver) and early.starts_early
    try:
        early.prestart(req)
        early.submit(same_later)  # the time and trigger differ, the solve does not: adopted
        done = early.take()
        assert early.adopted == 1 and done is not None and done.request is same_later
        assert done.result.weights == solve(req).weights
        early.prestart(req)
        early.submit(other)  # another solve (other previous weights): solved inline, not adopted
        done = early.take()
        assert early.adopted == 1 and done is not None and done.request is other
        assert done.result.weights == solve(other).weights
    finally:
        early.close()


def test_an_early_solver_lands_the_inline_weights_in_the_same_ticks(records: Any) -> None:
    inline_out = drive(records, PortfolioEngine(PortfolioSettings(**SETTINGS), None), 45)  # type: ignore[arg-type]
    engine = PortfolioEngine(PortfolioSettings(**SETTINGS, optimiser_worker="early"), None)  # type: ignore[arg-type]
    try:
        out = drive(records, engine, 45)
    finally:
        engine.solver.close()
    assert engine.solver.adopted >= 1, "no solve was started early"
    timeless = lambda rows: [(k, t, {f: x for f, x in v.items() if f != "solve_ms"}) for k, t, v in rows]  # noqa: E731
    assert timeless(out) == timeless(inline_out)  # everything but how long the solves took


@pytest.mark.parametrize("worker", ["inline", "early"])
def test_with_a_solve_lag_the_weights_and_their_rebalance_land_that_many_sessions_later(records: Any,
                                                                                       worker: str) -> None:
    policy = {"calendar_days": 20, "drift_band": 1.0, "cooldown_days": 5, "min_trade_value": 500.0,
              "lookback_days": 250}
    mandate = records.mandate(rebalance=policy)
    now = drive(records, PortfolioEngine(PortfolioSettings(**SETTINGS), None), 90, mandate=mandate)  # type: ignore[arg-type]
    engine = PortfolioEngine(PortfolioSettings(**SETTINGS, optimiser_worker=worker, solve_lag_sessions=2),
                             None)  # type: ignore[arg-type]
    asked: list[int] = []  # the day (session - 1) of every solve asked for
    submit = engine.solver.submit
    engine.solver.submit = lambda req: (asked.append(engine.sessions - 1), submit(req))  # type: ignore[method-assign]
    try:
        lagged = drive(records, engine, 90, mandate=mandate)
    finally:
        engine.close()
    solved_now = [(k, v) for k, t, v in now if t == "portfolio.targets"]
    solved_later = [(k, v) for k, t, v in lagged if t == "portfolio.targets"]
    assert len(solved_now) >= 2, "the window holds the initial solve and a calendar re-solve"
    # The initial solve (asked for at the same session either way) lands two sessions later, with its
    # trigger and the same weights; the orders of its rebalance wait for it.
    (k0, first_now), (k1, first_later) = solved_now[0], solved_later[0]
    assert k1 == k0 + 2 and first_later["trigger"] == first_now["trigger"] == "INITIAL"
    assert first_later["lookback_bars"] == first_now["lookback_bars"]
    weights = lambda v: {e["symbol"]: round(e["weight"], 9) for e in v["targets"]}  # noqa: E731
    assert weights(first_later) == weights(first_now)
    assert min(k for k, t, _ in lagged if t == "orders.proposed") == k1
    # Every solve lands two sessions after the session that asked for it (the last may still be in flight).
    assert len(asked) >= 2 and [k for k, _ in solved_later] == [a + 2 for a in asked if a + 2 < 90]
    assert "CALENDAR" in [v["trigger"] for _, v in solved_later]
    if worker == "early":
        assert engine.solver.adopted >= 1, "no solve was started early"
