"""The execution engine: reports, fills, trading state, journal and the sidecar gate."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pytest
from quorum_common.runtime.metrics import ServiceMetrics
from quorum_execution.app import build_engine
from quorum_execution.config import ExecutionSettings
from quorum_execution.engine import ExecutionEngine
from quorum_execution.gate import SidecarGate, sidecar_token
from quorum_execution.metrics import instrument
from quorum_execution.paper import PaperExchange
from quorum_execution.testing import DAY_NS, T0, Collect, bar, order, trading_state

D1, D2, D3 = (T0 + k * DAY_NS for k in (1, 2, 3))


def make(settings: ExecutionSettings, gate: SidecarGate | None = None) -> tuple[ExecutionEngine, Collect]:
    pub = Collect()
    return ExecutionEngine(settings, pub, gate=gate), pub


def submitted(engine: ExecutionEngine) -> list[str]:
    assert isinstance(engine.venue, PaperExchange)
    return [o.client_order_id for o in engine.venue.submitted]


def test_order_is_accepted_then_filled_at_the_next_bar(settings, feed) -> None:
    engine, pub = make(settings)
    feed(engine, ("md.bars", bar(T0, open_=99.0)), ("orders.approved", order(ref=100.0, quantity=10.0)))
    assert pub.statuses("o1") == ["ACCEPTED"]
    assert pub.on("exec.fills") == []
    feed(engine, ("md.bars", bar(D1, open_=101.0)))
    assert pub.statuses("o1") == ["ACCEPTED", "FILLED"]
    (fill,) = pub.on("exec.fills")
    report = pub.on("exec.reports")[-1]
    assert fill["ts_event"] == D1 and fill["decision_price"] == 100.0 and fill["arrival_price"] == 101.0
    assert fill["slippage_bps"] == pytest.approx((fill["price"] - 100.0) / 100.0 * 1e4)
    assert fill["slippage_bps"] > 100  # paid the 1% overnight move plus costs
    assert fill["notional"] == pytest.approx(fill["price"] * 10.0) and fill["fee_currency"] == "USD"
    assert fill["is_final"] and fill["leaves_quantity"] == 0.0 and fill["cumulative_quantity"] == 10.0
    assert report["is_final"] and report["avg_price"] == fill["price"] and report["remaining_quantity"] == 0.0
    assert report["correlation_id"] == fill["correlation_id"] == order()["correlation_id"]
    assert engine.working == {}


def test_fills_carry_their_orders_decision_and_tilt(settings, feed) -> None:
    engine, pub = make(settings)
    tilted = {**order(ref=100.0, quantity=10.0), "tilt_decision_id": "d-tilt", "tilt_share": -0.25}
    feed(engine, ("md.bars", bar(T0)), ("orders.approved", tilted), ("md.bars", bar(D1)))
    (fill,) = pub.on("exec.fills")
    assert (fill["decision_id"], fill["tilt_decision_id"], fill["tilt_share"]) == ("d-o1", "d-tilt", -0.25)


def test_sell_below_decision_price_has_positive_slippage(settings, feed) -> None:
    engine, pub = make(settings)
    feed(engine, ("orders.approved", order(side="SELL", ref=100.0)), ("md.bars", bar(D1, open_=99.0)))
    (fill,) = pub.on("exec.fills")
    assert fill["price"] < 99.0 and fill["slippage_bps"] > 100


def test_partial_fills_are_reported_and_sum_to_the_order(settings, feed) -> None:
    engine, pub = make(settings)
    feed(engine, ("orders.approved", order(quantity=250.0, tif="GTC")),
         *[("md.bars", bar(T0 + k * DAY_NS, volume=1_000.0)) for k in (1, 2, 3)])
    assert pub.statuses("o1") == ["ACCEPTED", "PARTIALLY_FILLED", "PARTIALLY_FILLED", "FILLED"]
    fills = pub.on("exec.fills")
    assert sum(f["quantity"] for f in fills) == 250.0
    assert [f["leaves_quantity"] for f in fills] == [150.0, 50.0, 0.0]
    reports = pub.on("exec.reports")
    assert [r["remaining_quantity"] for r in reports] == [250.0, 150.0, 50.0, 0.0]
    assert reports[-1]["avg_price"] == pytest.approx(sum(f["notional"] for f in fills) / 250.0)


def test_expired_remainder_is_reported(settings, feed) -> None:
    engine, pub = make(settings)
    feed(engine, ("orders.approved", order(quantity=250.0, tif="IOC")), ("md.bars", bar(D1, volume=1_000.0)))
    assert pub.statuses("o1") == ["ACCEPTED", "PARTIALLY_FILLED", "EXPIRED"]
    assert pub.on("exec.reports")[-1]["filled_quantity"] == 100.0
    assert engine.working == {}


def test_halt_cancels_working_orders_and_nothing_reaches_the_venue_after(settings, feed) -> None:
    engine, pub = make(settings)
    feed(engine, ("orders.approved", order(cid="b", quantity=5.0, tif="GTC", reduces_risk=True)),
         ("orders.approved", order(cid="a", quantity=250.0, tif="GTC")),
         ("md.bars", bar(D1, volume=1_000.0)),
         ("control.state", trading_state("HALTED", 1, D1 + 5, reason="HALT by alice")))
    assert pub.statuses("a") == ["ACCEPTED", "PARTIALLY_FILLED", "CANCELLED"]
    assert pub.statuses("b") == ["ACCEPTED", "FILLED"]
    cancelled = [r for r in pub.on("exec.reports") if r["status"] == "CANCELLED"]
    assert [(r["reason"], r["filled_quantity"], r["remaining_quantity"]) for r in cancelled] == [
        ("HALT: HALT by alice", 95.0, 0.0)]
    n_fills = len(pub.on("exec.fills"))
    feed(engine, ("orders.approved", order(cid="c", ts=D1 + 6)), ("md.bars", bar(D2, volume=1_000.0)))
    assert pub.statuses("c") == ["REJECTED"]
    assert "HALTED" in pub.on("exec.reports")[-1]["reason"]
    assert submitted(engine) == ["b", "a"]
    assert len(pub.on("exec.fills")) == n_fills


def test_risk_reducing_orders_pass_while_reducing_or_halted(settings, feed) -> None:
    engine, pub = make(settings)
    feed(engine, ("control.state", trading_state("REDUCING", 1, T0)),
         ("orders.approved", order(cid="up")), ("orders.approved", order(cid="down", side="SELL", reduces_risk=True)),
         ("control.state", trading_state("HALTED", 2, T0 + 3)),
         ("orders.approved", order(cid="down2", ts=T0 + 4, side="SELL", reduces_risk=True)))
    assert pub.statuses("up") == ["REJECTED"]
    assert pub.statuses("down") == ["ACCEPTED", "CANCELLED"]
    assert pub.statuses("down2") == ["ACCEPTED"]
    assert submitted(engine) == ["down", "down2"]


def test_resume_restores_trading_and_stale_states_are_ignored(settings, feed) -> None:
    engine, pub = make(settings)
    feed(engine, ("control.state", trading_state("HALTED", 1, T0)),
         ("control.state", trading_state("ACTIVE", 2, T0 + 1)),
         ("control.state", trading_state("HALTED", 1, T0 + 1)),  # the old state, redelivered late
         ("orders.approved", order()))
    assert engine.trading_state == "ACTIVE"
    assert pub.statuses("o1") == ["ACCEPTED"]


def test_restart_restores_the_journal_and_never_sends_an_order_twice(settings, feed) -> None:
    first, pub1 = make(settings)
    feed(first, ("orders.approved", order(cid="a")), ("orders.approved", order(cid="b", quantity=0.0)),
         ("md.bars", bar(D1)))
    history = pub1.on("exec.reports")
    restarted, pub2 = make(settings)
    feed(restarted, *[("exec.reports", r) for r in history])
    feed(restarted, ("orders.approved", order(cid="a")), ("orders.approved", order(cid="b", quantity=0.0)),
         ("orders.approved", order(cid="c")))
    assert submitted(restarted) == ["c"]
    assert restarted.duplicates == 2
    assert [r["client_order_id"] for r in pub2.on("exec.reports")] == ["c"]


def test_journal_keeps_orders_sent_but_never_final_in_doubt(settings, feed) -> None:
    first, pub1 = make(settings)
    feed(first, ("orders.approved", order(cid="a")))  # crash before any bar
    restarted, _ = make(settings)
    feed(restarted, *[("exec.reports", r) for r in pub1.on("exec.reports")])
    assert restarted.journal.in_doubt() == ["a"]


def test_redelivered_order_is_not_sent_twice(settings, feed) -> None:
    engine, pub = make(settings)
    feed(engine, ("orders.approved", order()), ("orders.approved", order()))
    assert submitted(engine) == ["o1"] and pub.statuses("o1") == ["ACCEPTED"]


def test_invalid_order_is_rejected_before_the_venue(settings, feed) -> None:
    engine, pub = make(settings)
    feed(engine, ("orders.approved", order(order_type="LIMIT", limit_price=None)))
    (report,) = pub.on("exec.reports")
    assert report["status"] == "REJECTED" and report["is_final"] and "limit_price" in report["reason"]
    assert submitted(engine) == []


def test_invalid_bar_goes_to_the_dead_letter_topic(settings, feed) -> None:
    engine, pub = make(settings)
    feed(engine, ("orders.approved", order()), ("md.bars", bar(D1, open_=float("nan"))))
    ((topic, _payload, reason),) = pub.dead
    assert topic == "md.bars" and "invalid bar" in reason
    assert pub.statuses("o1") == ["ACCEPTED"]


def test_same_input_gives_the_same_output(settings, feed) -> None:
    def run() -> list:
        engine, pub = make(settings)
        feed(engine, ("orders.approved", order(cid="a", quantity=300.0, tif="GTC")),
             ("orders.approved", order(cid="b", side="SELL", order_type="LIMIT", limit_price=101.0, tif="GTC")),
             *[("md.bars", bar(T0 + k * DAY_NS, open_=100.0 + k, high=102.0 + k, volume=1_500.0)) for k in (1, 2, 3)])
        return pub.out

    assert run() == run()


@dataclass
class Verdict:
    approved: bool
    reason: str
    detail: str = ""


@dataclass
class FakeSidecar:
    """Records every call; approves orders whose id is not in ``refuse``."""

    refuse: set[str] = field(default_factory=set)
    calls: list[tuple] = field(default_factory=list)
    held: dict[str, float] = field(default_factory=dict)
    open: dict[str, float] = field(default_factory=dict)
    """Quantity of the approved checks per symbol (the fake never releases it)."""
    seen: set[str] = field(default_factory=set)
    marked: set[str] | None = None
    """Symbols with a mark (None: every symbol has one)."""
    stale_s: float = 60.0
    """A restored mark older than this leaves its symbol without a mark."""
    connected: bool = True

    def check_order(self, cid, symbol, side, quantity, price, asset_class, sector):
        self.calls.append(("check", cid, price))
        assert (asset_class, sector) == ("equity", "Information_Technology")
        if cid in self.seen:
            return Verdict(False, "DUPLICATE_ORDER_ID")
        if self.marked is not None and symbol not in self.marked:
            return Verdict(False, "STALE_MARK")
        self.seen.add(cid)
        if cid in self.refuse:
            return Verdict(False, "MAX_ORDER_NOTIONAL", "too big")
        self.open[symbol] = self.open.get(symbol, 0.0) + quantity
        return Verdict(True, "OK")

    def report_fill(self, cid, symbol, side, quantity, price):
        self.calls.append(("fill", cid, quantity))
        self.held[symbol] = self.held.get(symbol, 0.0) + (quantity if side == "BUY" else -quantity)

    def state(self, symbol=""):
        return SimpleNamespace(symbol_found=symbol in self.held or symbol in self.open,
                               position=self.held.get(symbol, 0.0), open_buy=self.open.get(symbol, 0.0), open_sell=0.0)

    def report_mark(self, symbol, price):
        self.calls.append(("mark", symbol, price))
        if self.marked is not None:
            self.marked.add(symbol)

    def restore_mark(self, symbol, price, age_s):
        self.calls.append(("restore_mark", symbol, price, age_s))
        if self.marked is not None and age_s <= self.stale_s:
            self.marked.add(symbol)

    def order_done(self, cid):
        self.calls.append(("done", cid))


def test_sidecar_rejection_stops_the_order_before_the_venue(settings, feed) -> None:
    sidecar = FakeSidecar(refuse={"bad"})
    engine, pub = make(settings, SidecarGate(sidecar))
    feed(engine, ("orders.approved", order(cid="bad")), ("orders.approved", order(cid="ok", quantity=5.0)),
         ("orders.approved", order(cid="lim", order_type="LIMIT", limit_price=90.0, tif="GTC")),
         ("md.bars", bar(D1, close=101.0)), ("control.state", trading_state("HALTED", 1, D1 + 1)))
    assert pub.statuses("bad") == ["REJECTED"]
    assert pub.on("exec.reports")[0]["reason"] == "sidecar MAX_ORDER_NOTIONAL: too big"
    assert submitted(engine) == ["ok", "lim"]
    assert sidecar.calls == [("check", "bad", 100.0), ("check", "ok", 100.0), ("check", "lim", 90.0),
                             ("mark", "AAPL", 101.0), ("fill", "ok", 5.0), ("done", "lim")]


class DeadSidecar(FakeSidecar):
    def check_order(self, *args):
        raise ConnectionError("socket gone")


def test_sidecar_that_fails_keeps_every_order_out(settings, feed) -> None:
    engine, pub = make(settings, SidecarGate(DeadSidecar()))
    feed(engine, ("orders.approved", order()))
    assert pub.statuses("o1") == ["REJECTED"]
    assert "SIDECAR_UNAVAILABLE" in pub.on("exec.reports")[0]["reason"]
    assert submitted(engine) == []


def test_a_gate_restores_the_positions_a_restarted_sidecar_lost_before_its_next_order() -> None:
    """A new connection may reach a restarted sidecar with an empty ledger: before anything else, the gate
    reports the positions of the fills it saw again (as one fill per symbol at their average cost)."""
    sidecar = FakeSidecar()
    gate = SidecarGate(sidecar)
    gate.fill("o1", "AAPL", "BUY", 10.0, 100.0)
    gate.fill("o2", "AAPL", "BUY", 30.0, 104.0)
    gate.fill("o3", "AAPL", "SELL", 20.0, 110.0)  # a reduction keeps the average cost
    assert gate.positions["AAPL"] == (20.0, 103.0)
    sidecar.held, sidecar.open, sidecar.connected, sidecar.calls = {}, {}, False, []  # restarted: it reconnects
    assert gate.check(order(cid="o4")) is None
    assert sidecar.calls == [("fill", "restore-AAPL", 20.0), ("check", "o4", 100.0)]
    assert sidecar.held == {"AAPL": 20.0}
    sidecar.connected, sidecar.calls = False, []  # a reconnect to a sidecar that kept its ledger
    gate.mark("AAPL", 101.0)
    assert sidecar.calls == [("mark", "AAPL", 101.0)]  # it still counts o4 open: no check again
    assert sidecar.held == {"AAPL": 20.0} and gate.uncounted == set()


def test_a_gate_gives_a_restarted_sidecar_its_marks_back_with_their_age() -> None:
    """The last marks go back with the time since the gate had them: a restarted sidecar can trade at once
    on a fresh one, and counts the working orders of that symbol again in the same restore."""
    now = [1000.0]
    sidecar = FakeSidecar(marked=set())
    gate = SidecarGate(sidecar, clock=lambda: now[0])
    gate.mark("AAPL", 100.0)
    assert gate.check(order(cid="w1", quantity=30.0)) is None
    now[0] += 2.5
    sidecar.held, sidecar.open, sidecar.seen, sidecar.marked = {}, {}, set(), set()  # restarted
    sidecar.connected, sidecar.calls = False, []
    assert gate.check(order(cid="o2", quantity=5.0)) is None
    assert sidecar.calls == [("restore_mark", "AAPL", 100.0, 2.5), ("check", "w1", 100.0), ("check", "o2", 100.0)]
    assert gate.uncounted == set() and sidecar.open == {"AAPL": 35.0}
    sidecar.connected, sidecar.calls = False, []  # a plain reconnect: the marks go again, nothing else
    now[0] += 1.0
    gate.mark("AAPL", 101.0)
    assert sidecar.calls == [("restore_mark", "AAPL", 100.0, 3.5), ("mark", "AAPL", 101.0)]


def test_a_gate_has_a_restarted_sidecar_count_the_working_orders_once_their_symbol_has_a_mark() -> None:
    now = [1000.0]
    sidecar = FakeSidecar(marked=set())
    gate = SidecarGate(sidecar, clock=lambda: now[0])
    gate.mark("AAPL", 100.0)
    assert gate.check(order(cid="w1", quantity=30.0)) is None
    gate.fill("w1", "AAPL", "BUY", 10.0, 100.0)  # 20 still working
    assert gate.working["w1"][:3] == ("AAPL", "BUY", 20.0)
    now[0] += 61.0  # the last mark is older than the sidecar's staleness limit
    sidecar.held, sidecar.open, sidecar.seen, sidecar.marked = {}, {}, set(), set()  # restarted
    sidecar.connected, sidecar.calls = False, []
    gate.mark("AAPL", 101.0)  # the restore comes first: the old mark is stale, so w1 waits for this one
    assert sidecar.calls == [("fill", "restore-AAPL", 10.0), ("restore_mark", "AAPL", 100.0, 61.0),
                             ("check", "w1", 100.0), ("mark", "AAPL", 101.0), ("check", "w1", 100.0)]
    assert gate.uncounted == set() and sidecar.seen == {"w1"}
    gate.done("w1")
    assert gate.working == {}


def test_a_gate_only_adds_to_what_the_sidecar_holds_and_refuses_orders_until_it_could() -> None:
    sidecar = FakeSidecar()
    gate = SidecarGate(sidecar, clock=lambda: 1000.0)
    gate.fill("o1", "AAPL", "BUY", 10.0, 100.0)
    sidecar.held, sidecar.connected, sidecar.calls = {"AAPL": 15.0}, False, []
    gate.mark("AAPL", 100.0)  # the sidecar holds more: it may only be tightened, so it keeps that
    assert sidecar.calls == [("mark", "AAPL", 100.0)] and sidecar.held == {"AAPL": 15.0}

    def no_answer(symbol=""):
        raise RuntimeError("SIDECAR_UNAVAILABLE: connect: refused")

    sidecar.held, sidecar.connected, sidecar.calls = {}, False, []
    sidecar.state = no_answer
    assert gate.check(order(cid="o2")).startswith("sidecar SIDECAR_UNAVAILABLE: its ledger could not be restored")
    assert sidecar.calls == []
    sidecar.connected = True  # a later call connected, but the restore is still due
    del sidecar.state
    assert gate.check(order(cid="o3")) is None
    assert sidecar.calls == [("fill", "restore-AAPL", 10.0), ("restore_mark", "AAPL", 100.0, 0.0),
                             ("check", "o3", 100.0)]


def test_sidecar_tokens_are_printable_ascii_without_spaces() -> None:
    assert sidecar_token("Information Technology") == "Information_Technology"
    assert sidecar_token(None) == "NONE"
    assert sidecar_token("Crédit " + "x" * 40) == ("Cr_dit_" + "x" * 40)[:31]


def test_sidecar_socket_without_the_client_package_is_a_clear_error(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "quorum_sidecar", None)
    with pytest.raises(RuntimeError, match="QUORUM_SIDECAR_SOCKET"):
        ExecutionEngine(ExecutionSettings(sidecar_socket="/tmp/nowhere.sock"), Collect())


def test_real_sidecar_client_fails_closed_when_the_sidecar_is_down(monkeypatch, tmp_path, feed) -> None:
    try:
        import quorum_sidecar  # noqa: F401
    except ImportError:  # not installed in this venv yet: use the client from the repository
        monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2] / "risk_sidecar" / "client"))
    settings = ExecutionSettings(sidecar_socket=str(tmp_path / "absent.sock"), sidecar_deadline_ms=50)
    pub = Collect()
    engine = ExecutionEngine(settings, pub)
    feed(engine, ("orders.approved", order()), ("md.bars", bar(D1)))
    assert pub.statuses("o1") == ["REJECTED"]
    assert pub.on("exec.reports")[0]["reason"].startswith("sidecar SIDECAR_UNAVAILABLE")
    assert submitted(engine) == []


def test_a_restarted_service_goes_on_filling_an_order_an_earlier_run_left_working(settings, feed) -> None:
    """The paper book lives in the service: a restart rebuilds it from the reports, and the restarted service
    publishes exactly the reports and fills an uninterrupted one would have."""
    working = order(quantity=250.0, tif="GTC")
    bars = [("md.bars", bar(T0 + k * DAY_NS, volume=1_000.0)) for k in (1, 2, 3)]
    uninterrupted, expected = make(settings)
    feed(uninterrupted, ("orders.approved", working), *bars)
    first, pub1 = make(settings)
    feed(first, ("orders.approved", working), bars[0])
    assert pub1.statuses("o1") == ["ACCEPTED", "PARTIALLY_FILLED"]
    pub2 = Collect()
    restarted = build_engine(settings, pub2, pub1.on("exec.reports"), orders=[working])
    assert restarted.working == {} and list(restarted.resuming) == ["o1"]
    feed(restarted, *bars[1:])
    assert pub2.statuses("o1") == ["PARTIALLY_FILLED", "FILLED"]
    for topic in ("exec.reports", "exec.fills"):
        assert pub1.on(topic) + pub2.on(topic) == [pytest.approx(r) for r in expected.on(topic)]
    assert restarted.working == {} and restarted.venue.working == []


def test_a_restart_tracks_only_orders_left_working_and_names_those_it_cannot(settings, feed) -> None:
    first, pub1 = make(settings)
    feed(first, ("orders.approved", order(cid="done", quantity=10.0)), ("md.bars", bar(D1)),
         ("orders.approved", order(cid="rests", ts=D1 + 2, order_type="LIMIT", limit_price=90.0, tif="GTC")),
         ("orders.approved", order(cid="unknown", ts=D1 + 3, order_type="LIMIT", limit_price=80.0, tif="GTC")))
    history = pub1.on("exec.reports") + pub1.on("exec.reports")[-1:]  # a redelivered report counts once
    restarted = build_engine(settings, Collect(), history,
                             orders=[order(cid="done", quantity=10.0),
                                     order(cid="rests", ts=D1 + 2, order_type="LIMIT", limit_price=90.0, tif="GTC")])
    assert list(restarted.resuming) == ["rests"]
    assert restarted.resuming["rests"][0].reports == 1  # ACCEPTED: the next report is the second
    assert restarted.untracked == ["unknown"]
    metrics = ServiceMetrics("execution")
    instrument(restarted, metrics)
    assert metrics.registry.get_sample_value("quorum_execution_untracked_orders") == 1


def test_a_halt_cancels_an_order_an_earlier_run_left_working(settings, feed) -> None:
    first, pub1 = make(settings)
    resting = order(order_type="LIMIT", limit_price=90.0, tif="GTC")
    feed(first, ("orders.approved", resting))
    pub2 = Collect()
    restarted = build_engine(settings, pub2, pub1.on("exec.reports"), orders=[resting])
    feed(restarted, ("control.state", trading_state("HALTED", 1, D1)))
    assert pub2.statuses("o1") == ["CANCELLED"] and restarted.venue.working == []
