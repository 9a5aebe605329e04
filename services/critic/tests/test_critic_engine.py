"""The critic engine: tighten-only commands on regime shifts and drawdown breaches, periodic reports."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime
from typing import Any

import pytest
from quorum_common.bus.inprocess import InProcessBus
from quorum_common.runtime.config import ConfigError, load_settings
from quorum_common.runtime.service import wire_inprocess
from quorum_critic.app import SPEC
from quorum_critic.attribution import ALLOCATION
from quorum_critic.config import CriticSettings
from quorum_critic.engine import CriticEngine


class Collect:
    """A publisher that keeps what the engine emits."""

    def __init__(self) -> None:
        self.out: list[tuple[str, str | None, dict[str, Any]]] = []
        self.dead: list[str] = []

    def publish(self, topic: str, record: dict[str, Any], *, key: str | None = None) -> None:
        self.out.append((topic, key, record))

    def dead_letter(self, topic: str, payload: Any, reason: str, *, key: str | None = None, error: str = "") -> None:
        self.dead.append(reason)

    def of(self, topic: str) -> list[dict[str, Any]]:
        return [r for t, _, r in self.out if t == topic]


STEPS = {"max_position_weight": 0.5, "max_gross_exposure": 0.75}
"""The TIGHTEN_LIMITS step factors of the default settings."""


def run(to_message, recs: list[dict[str, Any]], **settings: Any) -> Collect:
    pub = Collect()
    engine = CriticEngine(CriticSettings(**settings), pub)
    for rec in recs:
        engine.on_message(to_message(rec))
    return pub


def test_shift_into_high_vol_tightens_once(records, to_message) -> None:
    labels = ["TRENDING", "TRENDING", "HIGH_VOL", "HIGH_VOL", "CRISIS", "MEAN_REVERTING", "HIGH_VOL"]
    pub = run(to_message, [records.regime(i, label) for i, label in enumerate(labels)])
    commands = pub.of("control.commands")
    assert [c["ts_event"] for c in commands] == [records.regime(i, "X")["ts_event"] for i in (2, 6)]
    first = commands[0]
    assert (first["command"], first["role"], first["issued_by"], first["source_service"]) == (
        "TIGHTEN_LIMITS", "SYSTEM", "critic", "critic")
    assert first["limits"] == STEPS  # step factors keyed by the risk limit names
    assert "TRENDING to HIGH_VOL" in first["reason"]
    assert first["correlation_id"] == records.regime(2, "HIGH_VOL")["event_id"]
    # the risk service applies each step to its current limit; the position limit is at its floor (0.5) already
    assert commands[1]["limits"] == {"max_gross_exposure": 0.75}
    assert all(key == "desk" for t, key, _ in pub.out if t == "control.commands")


def _day(records, day: float) -> date:
    """The UTC date of the conftest's day ``day`` (the critic's ``trade_from``)."""
    return datetime.fromtimestamp(records.regime(day, "X")["ts_event"] / 1e9, UTC).date()


def test_a_warm_up_tightens_nothing_and_trading_starts_in_its_last_regime(records, to_message) -> None:
    # shifts into HIGH_VOL and CRISIS before trade_from tighten nothing; the desk starts trading in HIGH_VOL: once
    labels = ["TRENDING", "HIGH_VOL", "TRENDING", "CRISIS", "HIGH_VOL", "HIGH_VOL", "HIGH_VOL", "TRENDING", "HIGH_VOL"]
    recs = [records.regime(i, label) for i, label in enumerate(labels)]
    pub = run(to_message, recs, trade_from=_day(records, 5))
    commands = pub.of("control.commands")
    assert [c["ts_event"] for c in commands] == [recs[5]["ts_event"], recs[8]["ts_event"]]
    assert commands[0]["reason"] == "trading starts in regime HIGH_VOL"
    assert commands[0]["limits"] == STEPS  # the first tightening: what a desk without the warm-up would start with
    assert "TRENDING to HIGH_VOL" in commands[1]["reason"]


def test_trading_that_starts_in_a_calm_regime_tightens_nothing_until_a_shift(records, to_message) -> None:
    labels = ["HIGH_VOL", "CRISIS", "TRENDING", "TRENDING", "HIGH_VOL"]
    recs = [records.regime(i, label) for i, label in enumerate(labels)]
    pub = run(to_message, recs, trade_from=_day(records, 2))
    assert [c["ts_event"] for c in pub.of("control.commands")] == [recs[4]["ts_event"]]


def test_a_shift_on_the_first_trading_day_tightens_once(records, to_message) -> None:
    recs = [records.regime(0, "TRENDING"), records.regime(1, "HIGH_VOL")]
    (command,) = run(to_message, recs, trade_from=_day(records, 1)).of("control.commands")
    assert (command["ts_event"], command["reason"]) == (recs[1]["ts_event"], "trading starts in regime HIGH_VOL")


def test_other_regime_scopes_are_ignored(records, to_message) -> None:
    pub = run(to_message, [records.regime(0, "HIGH_VOL", scope="crypto")])
    assert pub.out == []


def test_drawdown_soft_limit_tightens_once_per_crossing(records, to_message) -> None:
    dds = [0.05, 0.10, 0.15, 0.16, 0.18, 0.12, 0.13, 0.145, 0.20]  # soft limit 0.7 * 0.2 = 0.14
    recs = [records.mandate(0, max_drawdown=0.2)] + [records.snapshot(1 + i, 1e6 * (1 - d), d)
                                                    for i, d in enumerate(dds)]
    pub = run(to_message, [*recs, records.tick(10)])
    commands = pub.of("control.commands")
    assert [c["ts_event"] for c in commands] == [recs[3]["ts_event"], recs[8]["ts_event"]]
    assert "crossed the soft limit 14.00%" in commands[0]["reason"]
    assert [c["limits"] for c in commands] == [STEPS, {"max_gross_exposure": 0.75}]
    (report,) = pub.of("critic.reports")
    assert report["tightened_limits"]["max_position_weight_scale"] == 0.5  # the default floor
    assert report["tightened_limits"]["max_gross_exposure_scale"] == pytest.approx(0.75**2)
    assert report["tightened_limits"]["max_position_weight"] == pytest.approx(0.2 * 0.5)


def test_no_soft_limit_without_a_mandate_unless_configured(records, to_message) -> None:
    snaps = [records.snapshot(i, 1e6, d) for i, d in enumerate([0.0, 0.5])]
    assert run(to_message, snaps).of("control.commands") == []
    assert len(run(to_message, snaps, default_max_drawdown=0.3).of("control.commands")) == 1


def test_published_limits_never_loosen(records, to_message) -> None:
    rng = random.Random(2024)
    recs: list[dict[str, Any]] = []
    for day in range(400):
        if day % 50 == 0:  # later mandates are often looser than the limits already reached
            recs.append(records.mandate(day, max_drawdown=rng.uniform(0.05, 0.3),
                                        max_position_weight=rng.uniform(0.05, 1.0)))
        recs.append(records.regime(day, rng.choice(["TRENDING", "MEAN_REVERTING", "HIGH_VOL", "CRISIS"])))
        dd = rng.uniform(0.0, 0.25)
        recs.append(records.snapshot(day, 1e6 * (1 - dd), dd))
        if day % 7 == 6:
            recs.append(records.tick(day, "WEEK_END"))
    factors = {"max_position_weight_scale": 0.99, "max_gross_exposure_scale": 0.995}
    pub = run(to_message, recs, min_limit_scale=0.01, tighten_factors=factors, report_tick="WEEK_END")
    commands = pub.of("control.commands")
    assert len(commands) > 50
    scales = {"max_position_weight": 1.0, "max_gross_exposure": 1.0}
    for c in commands:
        assert c["limits"] and set(c["limits"]) <= set(scales)
        for name, factor in c["limits"].items():
            assert 0 < factor <= 1.0  # every published step tightens (or keeps) the risk service's limit
            scales[name] *= factor
    assert scales["max_position_weight"] > 0.01  # never at the floor
    reported = [r["tightened_limits"] for r in pub.of("critic.reports") if r["tightened_limits"]]
    assert len(reported) > 10
    seen: dict[str, float] = {}
    for limits in reported:  # cumulative scales and absolute limits never rise, even under a looser mandate
        for name, value in limits.items():
            assert value <= seen.get(name, float("inf"))
            seen[name] = value
    assert seen["max_position_weight_scale"] <= scales["max_position_weight"] * (1 + 1e-9)


def test_at_the_floor_no_command_and_the_report_says_so(records, to_message) -> None:
    recs = [records.regime(i, label) for i, label in enumerate(["HIGH_VOL", "TRENDING", "HIGH_VOL"])]
    pub = run(to_message, [*recs, records.tick(3)], min_limit_scale=0.75,
              tighten_factors={"max_gross_exposure_scale": 0.5})
    assert [c["limits"] for c in pub.of("control.commands")] == [{"max_gross_exposure": 0.75}]
    report = pub.of("critic.reports")[0]
    assert report["tightened_limits"] == {"max_gross_exposure_scale": 0.75}
    assert any("already at their floor" in r for r in report["recommendations"])


def scenario(records) -> list[dict[str, Any]]:
    """A month: a decision, a buy filled in two parts, a reject, marks, a regime shift, then MONTH_END."""
    votes = [records.vote("mom", 0.6), records.vote("mr", -0.2, strategy="MEAN_REVERSION")]
    d0 = records.decision(0, "AAA", 100.0, votes)
    d1 = records.decision(2, "AAA", 112.0, votes)
    return [
        records.mandate(0, max_drawdown=0.2),
        records.snapshot(0, 1_000_000.0),
        d0,
        records.fill(1, "AAA", "BUY", 60.0, 101.0, d0, order="o1", fee=2.0),
        records.fill(1.0000001, "AAA", "BUY", 40.0, 102.0, d0, order="o1", fee=1.0, by_correlation=True),
        records.report(1.0000002, "o1", "FILLED"),
        records.report(1.0000003, "o2", "REJECTED"),
        records.report(1.0000004, "o3", "ACCEPTED", final=False),
        records.snapshot(1.0000005, 1_000_000.0, positions={"AAA": (100.0, 101.4)}),
        records.regime(1.5, "TRENDING"),
        records.regime(2, "HIGH_VOL"),
        d1,
        records.snapshot(2, 1_001_060.0, positions={"AAA": (100.0, 112.0)}),
        records.snapshot(2.5, 1_001_060.0, positions={"AAA": (100.0, 112.0)}, portfolio="other"),
        records.tick(2, "DAY_END"),
        records.tick(3),
    ]


MONTH_TIGHTENED = {"max_position_weight_scale": 0.5, "max_gross_exposure_scale": 0.75,
                   "max_position_weight": pytest.approx(0.2 * 0.5), "max_gross_exposure": pytest.approx(1.0 * 0.75)}
"""The report of :func:`scenario`: cumulative scales and the absolute limits of its mandate."""


def test_a_fill_of_a_tilted_target_credits_the_tilting_decisions_agents_with_their_part(records, to_message
                                                                                        ) -> None:
    votes = [records.vote("mom", 0.6), records.vote("mr", -0.2, strategy="MEAN_REVERSION")]
    d0 = records.decision(0, "AAA", 100.0, votes)
    pub = run(to_message, [
        records.mandate(0, max_drawdown=0.2),
        d0,
        # a rebalance order the portfolio names no decision for, whose target owes 0.4 to d0's tilt
        records.fill(1, "AAA", "BUY", 100.0, 100.0, None, order="o1", tilt_share=0.4, tilted_by=d0),
        records.snapshot(1.5, 1_000_000.0, positions={"AAA": (100.0, 100.0)}),
        records.snapshot(2, 1_001_000.0, positions={"AAA": (100.0, 110.0)}),
        records.tick(3),
    ])
    (report,) = pub.of("critic.reports")
    pnl = {a["agent_id"]: a["pnl_contribution"] for a in report["attribution"]}
    assert pnl == {"mom": pytest.approx(0.4 * 1.5 * 1000.0), "mr": pytest.approx(0.4 * -0.5 * 1000.0),
                   ALLOCATION: pytest.approx(0.6 * 1000.0)}


def test_a_partial_fill_of_a_tilted_target_credits_the_tilt_with_the_part_it_took_on(records, to_message) -> None:
    d0 = records.decision(0, "AAA", 100.0, [records.vote("mom", 0.6)])
    pub = run(to_message, [
        records.mandate(0, max_drawdown=0.2),
        d0,
        records.fill(1, "AAA", "BUY", 100.0, 100.0, None, order="o1", tilt_share=0.0, tilted_by=None),
        # the next target, 200, owes a quarter to d0's tilt; 40 of the order of 100 fill, 60 stay open
        records.fill(1.2, "AAA", "BUY", 40.0, 100.0, None, order="o2", tilt_share=0.25, tilted_by=d0, leaves=60.0),
        records.snapshot(1.5, 1_000_000.0, positions={"AAA": (140.0, 100.0)}),
        records.snapshot(2, 1_000_140.0, positions={"AAA": (140.0, 101.0)}),
        records.tick(3),
    ])
    (report,) = pub.of("critic.reports")
    pnl = {a["agent_id"]: a["pnl_contribution"] for a in report["attribution"]}
    # 40 % of the way from (allocation 100, tilt 0) to (150, 50): 120 and 20 of the 140 shares, each up 1
    assert pnl == {"mom": pytest.approx(20.0), ALLOCATION: pytest.approx(120.0)}


def test_month_end_report(records, to_message) -> None:
    recs = scenario(records)
    pub = run(to_message, recs)
    (report,) = pub.of("critic.reports")
    assert report["portfolio_id"] == "p1"
    assert (report["window_start_ns"], report["window_end_ns"]) == (recs[0]["ts_event"], recs[-1]["ts_event"])
    assert (report["fills"], report["orders"], report["rejects"]) == (2, 2, 1)
    assert report["slippage"]["count"] == 2
    assert report["slippage"]["mean_bps"] == pytest.approx(150.0)  # 100 and 200 bps, both traced to d0 at 100
    (trade,) = report["trades"]
    assert (trade["quantity"], trade["avg_fill_price"], trade["fees"]) == (100.0, pytest.approx(101.4), 3.0)
    pnl = {a["agent_id"]: a["pnl_contribution"] for a in report["attribution"]}
    assert pnl == {"mom": pytest.approx(1.5 * 100 * 10.6), "mr": pytest.approx(-0.5 * 100 * 10.6)}
    hits = {a["agent_id"]: a["hit_rate"] for a in report["attribution"]}
    assert hits == {"mom": 1.0, "mr": 0.0}
    assert report["fees_paid"] == 3.0
    assert report["turnover"] == pytest.approx((6060.0 + 4080.0) / ((1_000_000 * 2 + 1_001_060) / 3))
    assert (report["regime_label"], report["regime_shift_detected"]) == ("HIGH_VOL", True)
    assert pub.of("control.commands")[0]["limits"] == STEPS
    assert report["tightened_limits"] == MONTH_TIGHTENED
    assert report["drawdown"] == 0.0 and report["rolling_sharpe"] is None
    assert any("mean slippage 150.0 bps" in r for r in report["recommendations"])
    assert any("agent mr lost" in r for r in report["recommendations"])


def test_fills_no_decision_asked_for_are_the_portfolios_allocation(records, to_message) -> None:
    """A rebalance order names no decision: its PnL is the allocation's. One naming a decision the critic no longer
    knows is unattributed."""
    known = records.decision(0, "AAA", 100.0, [records.vote("mom", 0.6)])
    lost = {**records.decision(0, "BBB", 50.0, [records.vote("mom", 0.6)]), "decision_id": "d-forgotten"}
    recs = [records.mandate(0, max_drawdown=0.2), records.snapshot(0, 1_000_000.0), known,
            records.fill(1, "AAA", "BUY", 10.0, 100.0, known, order="o1"),
            records.fill(1, "CCC", "BUY", 10.0, 20.0, None, order="o2"),
            records.fill(1, "BBB", "BUY", 10.0, 50.0, lost, order="o3"),
            records.snapshot(1.5, 1_000_000.0, positions={"AAA": (10.0, 100.0), "CCC": (10.0, 20.0),
                                                          "BBB": (10.0, 50.0)}),
            records.snapshot(2, 1_000_000.0, positions={"AAA": (10.0, 101.0), "CCC": (10.0, 23.0),
                                                        "BBB": (10.0, 55.0)}),
            records.tick(3)]
    (report,) = run(to_message, recs).of("critic.reports")
    pnl = {a["agent_id"]: (a["strategy"], a["pnl_contribution"]) for a in report["attribution"]}
    assert pnl == {"mom": ("MOMENTUM", pytest.approx(10.0)), "portfolio.allocation": ("OTHER", pytest.approx(30.0)),
                   "unattributed": ("OTHER", pytest.approx(50.0))}


def test_records_delivered_again_change_no_report(records, to_message) -> None:
    """At least once, a restarted service hands on again what it had handled after its last commit."""
    recs = scenario(records)
    repeated = [r for r in recs if {"fill_id", "status", "nav"} & r.keys()]
    assert len(repeated) == 9
    again = [copy for r in recs for copy in ([r, dict(r)] if r in repeated else [r])]
    stale = [r for r in repeated if "nav" in r]
    once, twice = run(to_message, recs), run(to_message, [*again[:-2], *stale, *again[-2:]])
    assert twice.out == once.out


def test_the_next_report_starts_a_new_window(records, to_message) -> None:
    recs = scenario(records)
    later = records.tick(40)
    first, second = run(to_message, [*recs, later]).of("critic.reports")
    assert second["window_start_ns"] > first["window_end_ns"]
    assert (second["fills"], second["orders"], second["trades"], second["attribution"]) == (0, 0, [], [])
    assert second["regime_shift_detected"] is False and second["tightened_limits"] is None
    assert second["regime_label"] == "HIGH_VOL"


def test_only_the_configured_portfolio_counts(records, to_message) -> None:
    recs = scenario(records)
    (report,) = run(to_message, recs, portfolio_id="other").of("critic.reports")
    assert (report["portfolio_id"], report["fills"], report["orders"]) == ("other", 0, 0)


def test_invalid_inputs_go_to_the_dead_letter_topic(records, to_message) -> None:
    d = records.decision(0, "AAA", 100.0, [])
    pub = run(to_message, [records.fill(1, "AAA", "BUY", 0.0, 100.0, d),
                           records.fill(1, "AAA", "BUY", 1.0, float("nan"), d),
                           records.fill(1, "AAA", "BUY", 1.0, 100.0, d, fee=float("inf")),
                           records.snapshot(1, -5.0), records.mandate(1, max_drawdown=1.5)])
    assert pub.dead == ["invalid fill quantity, price, notional or fee"] * 3 + ["invalid NAV or drawdown",
                                                                                 "max_drawdown outside (0, 1)"]
    assert pub.out == []


def test_replay_is_deterministic(records, to_message) -> None:
    assert run(to_message, scenario(records)).out == run(to_message, scenario(records)).out


def test_records_match_the_schemas_on_the_in_process_bus(records, to_message) -> None:
    bus = InProcessBus()
    wire_inprocess(bus, SPEC, CriticSettings())
    got = []
    bus.subscribe("probe", ["control.commands", "critic.reports"], got.append)
    bus.add_source("test", [(to_message(r).topic, None, r) for r in scenario(records)])
    bus.run()
    assert not bus.dead_letters
    assert [(m.topic, m.key) for m in got] == [("control.commands", "desk"), ("critic.reports", "p1")]
    assert got[0].value["limits"] == STEPS
    assert got[1].value["tightened_limits"] == MONTH_TIGHTENED


@pytest.mark.parametrize(("env", "field"), [
    ({"QUORUM_TIGHTEN_FACTORS": '{"max_position_weight_scale": 1.5}'}, "TIGHTEN_FACTORS"),
    ({"QUORUM_TIGHTEN_FACTORS": '{"max_position_weight": 0.5}'}, "TIGHTEN_FACTORS"),
    ({"QUORUM_SOFT_DRAWDOWN_FRACTION": "1.2"}, "SOFT_DRAWDOWN_FRACTION"),
    ({"QUORUM_SHARPE_MIN_PERIODS": "100"}, "sharpe_min_periods"),
    ({"QUORUM_TIGHTEN_ON_LABELS": '["PANIC"]'}, "TIGHTEN_ON_LABELS"),
    ({"QUORUM_REPORT_TICK": "HOURLY"}, "REPORT_TICK"),
])
def test_invalid_configuration_names_the_field(monkeypatch: pytest.MonkeyPatch, env: dict, field: str) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(ConfigError, match=field):
        load_settings(CriticSettings)
