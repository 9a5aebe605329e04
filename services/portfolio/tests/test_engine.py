"""The portfolio engine end to end on the in-process bus (every record round-trips the Avro codec)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from quorum_common.bus.inprocess import InProcessBus
from quorum_common.bus.message import Message
from quorum_common.event_dates import utc_date
from quorum_common.phases import PHASE_OFFSETS_NS, bar_time
from quorum_common.runtime.config import ConfigError, load_settings
from quorum_portfolio.config import PortfolioSettings
from quorum_portfolio.engine import PortfolioEngine
from quorum_portfolio.exposure import drawdown_scale

DAY = 86_400_000_000_000
T0 = 1_600_000_000 * 1_000_000_000
SYMBOLS = ["AAPL", "MSFT", "JNJ", "KO", "BTC-USD", "SPX"]
OUTPUTS = ("portfolio.targets", "orders.proposed", "portfolio.snapshots")
REBALANCE = PHASE_OFFSETS_NS["REBALANCE"]
SETTINGS = {"min_history_bars": 30, "reoptimise_bars": 21, "lookback_bars": 250, "inflight_timeout_bars": 5}


class FakeExecution:
    """Fills every proposed order in full at the close of the next bar of its symbol, fee 1."""

    def __init__(self, bus: InProcessBus, records: Any) -> None:
        self.records = records
        self.pending: dict[str, list[dict]] = {}
        self.publisher = bus.publisher("execution")
        bus.subscribe("execution", ["orders.proposed", "md.bars"], self.on_message)

    def on_message(self, msg: Message) -> None:
        if msg.topic == "orders.proposed":
            self.pending.setdefault(msg.value["symbol"], []).append(msg.value)
            return
        for order in self.pending.pop(msg.value["symbol"], []):
            fill = self.records.fill(order, msg.ts_event, msg.value["close"])
            self.publisher.publish("exec.fills", fill, key=order["client_order_id"])


def run(records: Any, days: int = 120, mandate: bool | dict = True, execute: bool = True,
        extra: list[tuple[str, dict]] = (), lockstep: bool = True, bar_every: dict[str, int] | None = None,
        **settings: Any) -> tuple[list[tuple[str, dict]], InProcessBus]:
    """Replay ``days`` daily bars (a symbol of ``bar_every`` only every that many days) and their phase ticks
    through the engine on a lockstep bus; return its outputs."""
    bus = InProcessBus(lockstep=lockstep)
    engine = PortfolioEngine(PortfolioSettings(**{**SETTINGS, **settings}), bus.publisher("portfolio"))
    bus.subscribe("portfolio", engine.inputs, engine.on_message)
    if execute:
        FakeExecution(bus, records)
    out: list[tuple[str, dict]] = []
    bus.tap(lambda m: out.append((m.topic, m.value)) if m.topic in OUTPUTS else None)
    feed = bus.publisher("feed")
    if mandate:
        feed.publish("mandate.compiled", mandate if isinstance(mandate, dict) else records.mandate(), key="m1")
    prices = records.prices(SYMBOLS, days, seed=7)
    for k in range(days):
        t = T0 + (k + 1) * DAY
        for s in SYMBOLS:
            if k % (bar_every or {}).get(s, 1) == 0:
                feed.publish("md.bars", records.bar(s, t, float(prices[s][k])), key=s)
        for tick in records.ticks(t, 10 * k):
            feed.publish("sys.clock", tick, key="XNYS")
    for topic, rec in extra:
        feed.publish(topic, rec, key=rec.get("symbol"))
    bus.run()
    bus.engine = engine  # type: ignore[attr-defined]
    return out, bus


def of(out: list[tuple[str, dict]], topic: str) -> list[dict]:
    return [v for t, v in out if t == topic]


def test_no_targets_orders_or_snapshots_before_a_mandate(records: Any) -> None:
    out, bus = run(records, days=60, mandate=False)
    assert out == []
    assert bus.engine.ledger.nav == 0.0  # type: ignore[attr-defined]


def test_targets_obey_the_mandate(records: Any) -> None:
    out, bus = run(records)
    targets = of(out, "portfolio.targets")
    assert targets, "no targets published"
    assert targets[0]["trigger"] == "INITIAL" and targets[0]["ts_event"] == T0 + 31 * DAY + REBALANCE
    for rec in targets:
        w = {e["symbol"]: e["weight"] for e in rec["targets"]}
        assert "SPX" not in w
        assert w["AAPL"] + w["MSFT"] <= 0.30 + 1e-6
        assert w["BTC-USD"] <= 0.10 + 1e-6
        assert max(w.values()) <= 0.40 + 1e-6
        assert sum(w.values()) + rec["cash_weight"] == pytest.approx(1.0)
        assert rec["cash_weight"] >= 0.01 - 1e-9
        assert rec["risk_measure"] == "MDD" and rec["mandate_id"] == "m1"
    assert len(targets) >= 3  # re-solved every 21 sessions
    assert bus.dead_letters == []


def test_orders_are_stamped_at_the_rebalance_tick_sells_first_and_well_formed(records: Any) -> None:
    out, bus = run(records)
    orders = of(out, "orders.proposed")
    assert orders
    by_ts: dict[int, list[dict]] = {}
    for o in orders:
        by_ts.setdefault(o["ts_event"], []).append(o)
        assert o["ts_event"] - bar_time(o["ts_event"]) == REBALANCE
        assert o["symbol"] != "SPX"
        assert o["notional"] >= 500.0 and o["quantity"] > 0
        if o["asset_class"] == "equity":
            assert o["quantity"] == int(o["quantity"])
        assert o["reduces_risk"] == (o["side"] == "SELL")
        assert o["origin"] == "REBALANCE" and o["decision_id"] is None
    for batch in by_ts.values():
        sides = [o["side"] for o in batch]
        assert sides == sorted(sides, key=lambda s: s != "SELL")
    assert len({o["client_order_id"] for o in orders}) == len(orders)
    assert orders[0]["reason"].startswith("INITIAL")
    assert bus.dead_letters == []


def test_snapshots_track_the_ledger_at_every_rebalance_tick(records: Any) -> None:
    out, bus = run(records)
    snaps = of(out, "portfolio.snapshots")
    assert len(snaps) == 120
    assert [s["sequence"] for s in snaps] == list(range(1, 121))
    last = snaps[-1]
    engine = bus.engine  # type: ignore[attr-defined]
    fills = bus.delivered["exec.fills"]
    assert fills > 0 and last["fees_paid"] == pytest.approx(1.0 * fills)
    assert last["nav"] == pytest.approx(last["cash"] + sum(p["market_value"] for p in last["positions"]))
    assert last["nav"] == pytest.approx(1_000_000 + last["realised_pnl"] + last["unrealised_pnl"] - last["fees_paid"])
    assert last["nav"] == pytest.approx(engine.ledger.nav)
    assert 0.0 <= last["drawdown"] < 1.0 and last["peak_nav"] >= last["nav"]
    assert last["exposure_by_sector"]
    assert last["gross_exposure"] == pytest.approx(sum(p["weight"] for p in last["positions"]))


def test_replay_is_deterministic(records: Any) -> None:
    first, _ = run(records, days=80)
    second, _ = run(records, days=80)
    strip = [(t, {k: v for k, v in rec.items() if k != "solve_ms"}) for t, rec in first]
    assert strip == [(t, {k: v for k, v in rec.items() if k != "solve_ms"}) for t, rec in second]
    assert of(first, "orders.proposed")


def test_no_new_order_while_one_is_in_flight(records: Any) -> None:
    out, _ = run(records, days=90, execute=False, inflight_timeout_bars=1000)
    orders = of(out, "orders.proposed")
    assert orders
    per_symbol: dict[str, set[int]] = {}
    for o in orders:
        per_symbol.setdefault(o["symbol"], set()).add(o["ts_event"])
    assert all(len(ts) == 1 for ts in per_symbol.values())


def test_an_unanswered_order_stops_blocking_after_the_timeout(records: Any) -> None:
    out, _ = run(records, days=90, execute=False, inflight_timeout_bars=5)
    per_symbol: dict[str, set[int]] = {}
    for o in of(out, "orders.proposed"):
        per_symbol.setdefault(o["symbol"], set()).add(o["ts_event"])
    assert any(len(ts) >= 2 for ts in per_symbol.values())
    assert all(min(b - a for a, b in zip(sorted(ts), sorted(ts)[1:], strict=False)) >= 5 * DAY
               for ts in per_symbol.values() if len(ts) >= 2)


def test_an_order_on_a_symbol_with_sparse_bars_blocks_it_for_that_many_of_its_bars(records: Any) -> None:
    """KO has a bar every fourth session: an unanswered KO order (execution would fill it at KO's next bar) blocks KO
    for five KO bars, twenty sessions, not five sessions; the daily symbols are blocked for five sessions."""
    out, _ = run(records, days=160, execute=False, inflight_timeout_bars=5, bar_every={"KO": 4}, min_history_bars=8)
    days: dict[str, list[int]] = {}
    for o in of(out, "orders.proposed"):
        days.setdefault(o["symbol"], []).append((o["ts_event"] - T0) // DAY)
    gaps = {s: [b - a for a, b in itertools.pairwise(d)] for s, d in days.items()}
    assert gaps.get("KO") and min(gaps["KO"]) >= 20, gaps
    assert any(g and min(g) < 20 for s, g in gaps.items() if s != "KO"), gaps


def test_a_rejected_order_no_longer_blocks_its_symbol(records: Any) -> None:
    out, _ = run(records, days=90, execute=False, inflight_timeout_bars=1000)
    first = of(out, "orders.proposed")[0]
    reject = {"ts": first["ts_event"] + DAY, "order": first}
    out2, _ = run(records, days=90, execute=False, inflight_timeout_bars=1000,
                  extra=[("risk.decisions", rejected(records, reject["order"], reject["ts"]))])
    again = [o for o in of(out2, "orders.proposed") if o["symbol"] == first["symbol"]]
    assert len({o["ts_event"] for o in again}) >= 2


def rejected(records: Any, order: dict, ts: int) -> dict:
    from quorum_common.engine import envelope

    return {**envelope(ts, "risk", order["client_order_id"]), "client_order_id": order["client_order_id"],
            "portfolio_id": order["portfolio_id"], "order_event_id": order["event_id"], "symbol": order["symbol"],
            "side": order["side"], "quantity": order["quantity"], "notional": order["notional"],
            "reduces_risk": order["reduces_risk"], "layer": "PYTHON", "verdict": "REJECTED",
            "reason_code": "FAT_FINGER_NOTIONAL", "reason_detail": "test", "trading_state": "ACTIVE",
            "checks": [], "check_latency_ns": None}


def test_a_strong_sell_decision_sells_with_its_ids(records: Any) -> None:
    out, _ = run(records, days=100)
    snap = of(out, "portfolio.snapshots")[69]  # session of day 70
    top = max(snap["positions"], key=lambda p: p["weight"])
    assert top["weight"] > 0.05
    t = T0 + 71 * DAY
    decision = records.decision(top["symbol"], t + PHASE_OFFSETS_NS["VOTE"], "STRONG_SELL", -0.9)
    out2, bus2 = run(records, days=100, extra=[("signals.decisions", decision)])
    sells = [o for o in of(out2, "orders.proposed") if o["ts_event"] == t + REBALANCE and o["symbol"] == top["symbol"]]
    assert len(sells) == 1
    sell = sells[0]
    assert sell["side"] == "SELL" and sell["origin"] == "SIGNAL" and sell["reduces_risk"]
    assert sell["decision_id"] == decision["decision_id"]
    assert sell["correlation_id"] == decision["correlation_id"]
    assert sell["quantity"] == pytest.approx(top["quantity"])
    assert sell["target_weight"] == 0.0
    assert (sell["tilt_decision_id"], sell["tilt_share"]) == (decision["decision_id"], None)  # a zero target
    assert bus2.dead_letters == []


def test_orders_say_which_decision_tilted_their_target_and_by_how_much(records: Any) -> None:
    plain, _ = run(records, days=100)
    first = min(o["ts_event"] for o in of(plain, "orders.proposed"))
    untilted = {o["symbol"]: o for o in of(plain, "orders.proposed") if o["ts_event"] == first}
    assert all((o["tilt_decision_id"], o["tilt_share"]) == (None, 0.0) for o in untilted.values())
    symbol = max(untilted, key=lambda s: untilted[s]["target_weight"])
    decision = records.decision(symbol, first - PHASE_OFFSETS_NS["REBALANCE"] + PHASE_OFFSETS_NS["VOTE"],
                                "SELL", -0.5)
    out, _ = run(records, days=100, extra=[("signals.decisions", decision)])
    orders = {o["symbol"]: o for o in of(out, "orders.proposed") if o["ts_event"] == first}
    tilted = orders[symbol]
    # The first rebalance still buys it, less (tilt 0.5 x score -0.5 cuts its weight by a quarter, then the caps and
    # the budget apply): its target owes a negative share to the tilt. The order is the allocation's (no decision
    # asked for a buy), its tilt the SELL decision's.
    assert (tilted["side"], tilted["origin"], tilted["decision_id"]) == ("BUY", "REBALANCE", None)
    assert tilted["tilt_decision_id"] == decision["decision_id"]
    target, without = tilted["target_weight"], untilted[symbol]["target_weight"]
    assert target < without
    assert tilted["tilt_share"] == pytest.approx((target - without) / target)
    assert all((o["tilt_decision_id"], o["tilt_share"]) == (None, 0.0) for s, o in orders.items() if s != symbol)


def test_bad_bars_and_fills_go_to_the_dead_letter_topic(records: Any) -> None:
    bad_bar = records.bar("AAPL", T0 + 5 * DAY + 5, -1.0)
    order = {"client_order_id": "c1", "correlation_id": "x", "portfolio_id": "main", "decision_id": None,
             "symbol": "AAPL", "side": "BUY", "quantity": 0.0, "asset_class": "equity", "sector": "IT"}
    bad_fill = records.fill(order, T0 + 5 * DAY + 6, 100.0)
    _, bus = run(records, days=10, extra=[("md.bars", bad_bar), ("exec.fills", bad_fill)])
    reasons = sorted((d.topic, d.reason) for d in bus.dead_letters)
    assert reasons == [("exec.fills", "invalid fill"), ("md.bars", "bar close must be positive and finite")]


def test_a_newer_mandate_version_rebalances_with_its_caps(records: Any) -> None:
    tighter = records.mandate(ts=T0 + 60 * DAY + 10, version=2, sector_caps={"Information Technology": 0.05})
    out, _ = run(records, days=80, extra=[("mandate.compiled", tighter)])
    changed = [r for r in of(out, "portfolio.targets") if r["trigger"] == "MANDATE_CHANGE"]
    assert len(changed) == 1 and changed[0]["mandate_version"] == 2
    w = {e["symbol"]: e["weight"] for e in changed[0]["targets"]}
    assert w["AAPL"] + w["MSFT"] <= 0.05 + 1e-6


@pytest.mark.parametrize(("var", "value"), [("QUORUM_TILT", "2"), ("QUORUM_SOLVERS", '["NOPE"]'),
                                            ("QUORUM_REOPTIMISE_BARS", "0")])
def test_invalid_settings_name_the_variable(monkeypatch: pytest.MonkeyPatch, var: str, value: str) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError, match=var):
        load_settings(PortfolioSettings)


def test_without_lockstep_the_engine_still_trades_cleanly(records: Any) -> None:
    out, bus = run(records, days=60, lockstep=False)
    assert of(out, "orders.proposed") and len(of(out, "portfolio.snapshots")) == 60
    assert bus.dead_letters == []


class Collect:
    """A publisher that keeps what is published."""

    def __init__(self) -> None:
        self.out: list[tuple[str, dict]] = []

    def publish(self, topic: str, record: dict, *, key: str | None = None) -> None:
        self.out.append((topic, record))

    def dead_letter(self, topic: str, payload: Any, reason: str, *, key: str | None = None, error: str = "") -> None:
        self.out.append(("dlq." + topic, {"reason": reason}))


def test_a_late_bar_neither_marks_nor_enters_the_history(records: Any) -> None:
    engine = PortfolioEngine(PortfolioSettings(), Collect())
    for ts, close in ((T0 + 2 * DAY, 100.0), (T0 + DAY, 50.0)):
        engine.on_message(Message("md.bars", "KO", records.bar("KO", ts, close), "quorum.v1.BarClosed"))
    assert engine.ledger.last_price("KO") == 100.0


def test_decisions_and_ticks_before_a_mandate_do_nothing(records: Any) -> None:
    pub = Collect()
    engine = PortfolioEngine(PortfolioSettings(), pub)
    engine.on_message(Message("signals.decisions", "KO", records.decision("KO", T0 + 1, "STRONG_BUY", 1.0), "x"))
    for tick in records.ticks(T0, 0):
        engine.on_message(Message("sys.clock", "XNYS", tick, "quorum.v1.ClockTicked"))
    assert pub.out == [] and "KO" in engine.decisions


def test_the_app_spec_builds_the_engine() -> None:
    from quorum_portfolio.app import SPEC

    assert SPEC.name == "portfolio"
    assert isinstance(SPEC.engine(PortfolioSettings(), Collect()), PortfolioEngine)


def test_a_cdar_mandate_is_optimised_with_cdar(records: Any) -> None:
    mandate = records.mandate(risk_measure="CDAR", cdar_alpha=0.1, upper_risk=0.5)
    out, bus = run(records, days=60, mandate=mandate)
    targets = of(out, "portfolio.targets")
    assert targets and all(r["risk_measure"] == "CDAR" for r in targets)
    assert any(not r["fallback"] for r in targets)
    assert bus.dead_letters == []


def test_final_execution_reports_end_the_flight(records: Any) -> None:
    from quorum_portfolio.engine import InFlight

    engine = PortfolioEngine(PortfolioSettings(), Collect())
    engine.inflight = {"a": InFlight("KO", "BUY", 1.0, 0), "b": InFlight("KO", "BUY", 1.0, 0)}
    for cid, status, final in (("a", "PARTIALLY_FILLED", False), ("b", "CANCELLED", True)):
        report = {"client_order_id": cid, "status": status, "is_final": final, "ts_event": T0}
        engine.on_message(Message("exec.reports", cid, report, "quorum.v1.ExecutionReported"))
    assert set(engine.inflight) == {"a"}


def trading_state(state: str, ts: int, sequence: int, limits: dict[str, float] | None = None) -> dict:
    from quorum_common.engine import envelope

    return {**envelope(ts, "state", sequence), "desk": "desk", "sequence": sequence, "state": state,
            "previous_state": "ACTIVE", "reason": "test", "changed_by": "risk", "command_event_id": None,
            "limits": limits or {}, "drawdown": None}


def test_tightened_limits_bound_the_targets_and_trigger_a_rebalance(records: Any) -> None:
    """The critic tightens the position and gross limits (state unchanged): the next rebalance trades down to
    them at once, and no later order would take a position or the book past them."""
    loose, tight = {"max_position_weight": 0.5, "max_gross_exposure": 1.0}, \
        {"max_position_weight": 0.06, "max_gross_exposure": 0.2}
    tighten_ts = T0 + 80 * DAY + 6
    out, bus = run(records, days=110, extra=[("control.state", trading_state("ACTIVE", T0 + 6, 1, loose)),
                                             ("control.state", trading_state("ACTIVE", tighten_ts, 2, tight))])
    targets = of(out, "portfolio.targets")
    assert max(t["weight"] for r in targets if r["ts_event"] < tighten_ts for t in r["targets"]) > 0.06
    snaps = [s for s in of(out, "portfolio.snapshots") if s["ts_event"] > tighten_ts]
    first = min((o for o in of(out, "orders.proposed") if o["ts_event"] > tighten_ts), key=lambda o: o["ts_event"])
    assert first["ts_event"] == bar_time(tighten_ts) + DAY + REBALANCE, "the next session rebalances"
    assert first["reason"].startswith("RISK_STATE rebalance"), first["reason"]
    assert bus.engine.targets and max(bus.engine.targets.values()) <= 0.06 + 1e-12
    assert sum(bus.engine.targets.values()) <= 0.2 + 1e-12
    settled = snaps[5:]  # orders placed at the first rebalance have filled
    assert settled and all(s["gross_exposure"] <= 0.2 * 1.05 for s in settled)
    assert all(p["weight"] <= 0.06 * 1.05 for s in settled for p in s["positions"])


def test_under_the_drawdown_lock_the_desk_sells_down_and_never_buys(records: Any) -> None:
    lock_ts = T0 + 80 * DAY + 5
    out, bus = run(records, days=110, extra=[("control.state", trading_state("REDUCING", lock_ts, 1))])
    before = [o for o in of(out, "orders.proposed") if o["ts_event"] < lock_ts]
    after = [o for o in of(out, "orders.proposed") if o["ts_event"] > lock_ts]
    assert any(o["side"] == "BUY" for o in before)
    assert after and all(o["side"] == "SELL" and o["reduces_risk"] for o in after)
    snaps = of(out, "portfolio.snapshots")
    gross_at_lock = next(s["gross_exposure"] for s in snaps if s["ts_event"] > lock_ts)
    assert snaps[-1]["gross_exposure"] < 0.7 * gross_at_lock, "the lock should halve the book"
    assert bus.engine.trading_state == "REDUCING"


def test_halted_proposes_nothing(records: Any) -> None:
    halt_ts = T0 + 80 * DAY + 5
    out, _ = run(records, days=110, extra=[("control.state", trading_state("HALTED", halt_ts, 1))])
    assert [o for o in of(out, "orders.proposed") if o["ts_event"] > halt_ts] == []



def test_a_symbol_without_a_fresh_bar_is_left_out_of_the_rebalance(records: Any) -> None:
    """KO has a bar every other day (as monthly BTC-USD bars in a daily desk); with a half-day stale price limit
    (the risk service would refuse its orders on the other days) its orders go out only on the days of its bars;
    without the limit, the same replay trades it on the other days too."""

    def ko_order_days(stale_price_ns: float | None) -> set[int]:
        limits = {"max_position_weight": 0.5, "max_gross_exposure": 1.0}
        if stale_price_ns is not None:
            limits["stale_price_ns"] = stale_price_ns
        out, _ = run(records, days=120, extra=[("control.state", trading_state("ACTIVE", T0 + 6, 1, limits))],
                     bar_every={"KO": 2}, min_history_bars=8)
        return {(o["ts_event"] - T0) // DAY - 1 for o in of(out, "orders.proposed") if o["symbol"] == "KO"}

    with_limit, without = ko_order_days(0.5 * DAY), ko_order_days(None)
    assert with_limit and all(day % 2 == 0 for day in with_limit), with_limit
    assert any(day % 2 for day in without), without


def test_targets_are_scaled_down_to_the_mandates_volatility_target(records: Any) -> None:
    """A volatility target under the solved weights' volatility holds target / volatility of every target."""
    full, _ = run(records)
    out, bus = run(records, mandate=records.mandate(target_volatility=0.02))
    assert bus.engine.volatility > 0.02  # type: ignore[attr-defined]
    snaps = {s["ts_event"]: s for s in of(out, "portfolio.snapshots")}
    assert snaps[max(snaps)]["exposure_scale"] == pytest.approx(0.02 / bus.engine.volatility)  # type: ignore[attr-defined]
    first_full, first = of(full, "portfolio.targets")[0], of(out, "portfolio.targets")[0]
    scale = snaps[first["ts_event"]]["exposure_scale"]
    assert 0 < scale < 1
    assert {t["symbol"]: t["weight"] for t in first["targets"]} == pytest.approx(
        {t["symbol"]: t["weight"] * scale for t in first_full["targets"]})
    assert [s["exposure_scale"] for s in of(full, "portfolio.snapshots") if s["exposure_scale"] is not None] and all(
        s["exposure_scale"] == 1.0 for s in of(full, "portfolio.snapshots") if s["exposure_scale"] is not None)


def test_targets_shrink_with_the_drawdown_down_to_none_at_the_lock(records: Any) -> None:
    """From the mandate's derisk_drawdown the targets shrink linearly to none at the risk service's lock."""
    limits = {"max_position_weight": 0.5, "max_gross_exposure": 1.0, "drawdown_lock": 0.03}
    out, bus = run(records, days=110, mandate=records.mandate(derisk_drawdown=0.01),
                   extra=[("control.state", trading_state("ACTIVE", T0 + 6, 1, limits))])
    snaps = [s for s in of(out, "portfolio.snapshots") if s["exposure_scale"] is not None]
    assert snaps
    for s in snaps:
        assert s["exposure_scale"] == pytest.approx(drawdown_scale(s["drawdown"], 0.01, 0.03))
    assert any(0 < s["exposure_scale"] < 1 for s in snaps), "the replay never entered the ramp"
    assert any(s["exposure_scale"] == 1 for s in snaps)
    assert bus.dead_letters == []


def test_without_exposure_scaling_the_targets_are_held_in_full(records: Any) -> None:
    out, _ = run(records, mandate=records.mandate(target_volatility=0.02, derisk_drawdown=0.0),
                 exposure_scaling=False)
    scales = {s["exposure_scale"] for s in of(out, "portfolio.snapshots")}
    assert 1.0 in scales and scales <= {None, 1.0}


def test_an_instrument_with_a_bar_every_fourth_session_gets_half_its_cap(records: Any) -> None:
    """JNJ has a bar every fourth session (as monthly BTC-USD bars in a daily desk): its cap of 0.40 is halved
    (÷ √4) in the optimiser and in the tilt, and the optimiser puts the rest elsewhere instead of in cash; the same
    replay without the setting holds JNJ at its full cap."""

    def jnj(size_by_bar_interval: bool) -> tuple[list[dict], PortfolioEngine]:
        out, bus = run(records, days=160, bar_every={"JNJ": 4}, min_history_bars=8,
                       size_by_bar_interval=size_by_bar_interval)
        return of(out, "portfolio.targets"), bus.engine  # type: ignore[attr-defined]

    def weights(rec: dict) -> dict[str, float]:
        return {t["symbol"]: t["weight"] for t in rec["targets"]}

    sized, engine = jnj(True)
    full, _ = jnj(False)
    assert engine.asset_caps["JNJ"] == pytest.approx(0.20) and engine.asset_caps["KO"] == pytest.approx(0.40)
    assert sized and all(weights(t).get("JNJ", 0.0) <= 0.20 + 1e-6 for t in sized)
    assert max(weights(t).get("JNJ", 0.0) for t in full) > 0.30
    assert sum(weights(sized[-1]).values()) == pytest.approx(sum(weights(full[-1]).values()), abs=0.02)


def test_the_targets_volatility_is_measured_again_at_every_rebalance_tick(records: Any) -> None:
    """The volatility target's scale moves from session to session between solves (the targets' volatility is
    measured on the trailing closes at every tick, not once per solve)."""
    out, _ = run(records, mandate=records.mandate(target_volatility=0.02))
    solves = len(of(out, "portfolio.targets"))
    scales = [s["exposure_scale"] for s in of(out, "portfolio.snapshots") if s["exposure_scale"] is not None]
    assert len(set(scales)) > 3 * solves, (solves, len(set(scales)))
    assert all(0 < s < 1 for s in scales)


def test_before_trade_from_the_desk_warms_up_without_proposing_an_order(records: Any) -> None:
    start = T0 + 61 * DAY  # the 61st bar time: 30 sessions of solvable history before it
    out, _ = run(records, days=120, trade_from=utc_date(start))
    orders = of(out, "orders.proposed")
    assert orders and min(o["ts_event"] for o in orders) == start + REBALANCE
    assert orders[0]["reason"].startswith("INITIAL")
    warm = [s for s in of(out, "portfolio.snapshots") if s["ts_event"] < start]
    assert len(warm) == 60 and {s["nav"] for s in warm} == {records.mandate()["capital"]}
    # the warm-up solves at the reoptimise cadence only, not at every session an INITIAL rebalance is pending
    solved_at = [t["ts_event"] for t in of(out, "portfolio.targets") if t["ts_event"] < start]
    assert solved_at == [T0 + 31 * DAY + REBALANCE, T0 + 52 * DAY + REBALANCE]
    cold, _ = run(records, days=120)
    assert min(o["ts_event"] for o in of(cold, "orders.proposed")) == T0 + 31 * DAY + REBALANCE


def test_trade_from_must_be_a_date(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUORUM_TRADE_FROM", "next week")
    with pytest.raises(ConfigError, match="QUORUM_TRADE_FROM"):
        load_settings(PortfolioSettings)
