"""Each service's own metrics on the in-process desk: the instrument hooks of the real engines, checked
against the records the bus carried (no broker, no Prometheus: the exposition is read from the registries).
"""

from __future__ import annotations

from collections import Counter
from datetime import date
from typing import Any

import pytest
from prometheus_client import generate_latest
from quorum_common.bus.inprocess import InProcessBus
from quorum_common.bus.message import Message
from quorum_common.paths import REPO_ROOT
from quorum_common.runtime.config import load_settings
from quorum_common.runtime.metrics import ServiceMetrics
from quorum_common.runtime.service import wire_inprocess
from quorum_desk.composition import CONSUMERS, SOURCE
from quorum_execution.metrics import sidecar_reason

SETTINGS = {
    "ingest": {"start": date(2006, 3, 1), "end": date(2006, 8, 31),
               "symbols": ("AAPL", "MSFT", "JPM", "XOM", "KO", "PEP", "HD", "JNJ", "SPX", "VIX")},
    "manager": {"mandate_path": REPO_ROOT / "services" / "desk" / "tests" / "test_mandate.yaml"},
    "regime": {"min_fit_bars": 60, "refit_every": 20},
}


class Run:
    """The registries of every service after the replay, and the records the bus carried."""

    def __init__(self) -> None:
        self.metrics: dict[str, ServiceMetrics] = {}
        self.records: dict[str, list[dict[str, Any]]] = {}

    def value(self, service: str, name: str, **labels: str) -> float:
        """A sample's value (0 when absent)."""
        return self.metrics[service].registry.get_sample_value(name, labels) or 0.0

    def total(self, service: str, name: str) -> float:
        """Sum of every sample named ``name``."""
        return sum(s.value for m in self.metrics[service].registry.collect() for s in m.samples if s.name == name)


@pytest.fixture(scope="module")
def run() -> Run:
    """The desk over six months of 2006 on the lockstep in-process bus, every service instrumented."""
    out = Run()
    bus = InProcessBus(lockstep=True, trace=False)
    bus.tap(lambda m: out.records.setdefault(m.topic, []).append(m.value) if isinstance(m, Message) else None)
    for spec in (*CONSUMERS, SOURCE):
        engine = wire_inprocess(bus, spec, load_settings(spec.settings_cls, **SETTINGS.get(spec.name, {})))
        out.metrics[spec.name] = ServiceMetrics(spec.name)
        if spec.instrument is not None:
            spec.instrument(engine, out.metrics[spec.name])
    bus.run()
    return out


def test_every_engine_service_has_its_own_metrics() -> None:
    assert {s.name for s in CONSUMERS if s.instrument is None} == set()


def test_risk_counts_every_verdict_by_reason(run: Run) -> None:
    decisions = run.records["risk.decisions"]
    assert decisions, "the window must produce orders"
    expected = Counter((d["verdict"], d["reason_code"]) for d in decisions)
    for (verdict, reason), n in expected.items():
        assert run.value("risk", "quorum_risk_order_decisions_total", verdict=verdict, reason=reason) == n
    assert run.total("risk", "quorum_risk_order_decisions_total") == len(decisions)
    states = {s: run.value("risk", "quorum_risk_trading_state", state=s) for s in ("ACTIVE", "REDUCING", "HALTED")}
    assert sum(states.values()) == 1
    last = run.records["control.state"][-1]
    assert states[last["state"]] == 1
    assert run.value("risk", "quorum_risk_drawdown_lock_ratio") > 0


def test_portfolio_exports_the_last_snapshot_and_counts_orders(run: Run) -> None:
    snap = run.records["portfolio.snapshots"][-1]
    assert run.value("portfolio", "quorum_portfolio_nav_value", portfolio_id=snap["portfolio_id"]) == snap["nav"]
    for sector, x in snap["exposure_by_sector"].items():
        assert run.value("portfolio", "quorum_portfolio_exposure_by_sector_ratio", portfolio_id=snap["portfolio_id"],
                         sector=sector) == x
    text = generate_latest(run.metrics["portfolio"].registry).decode()
    assert text.count("quorum_portfolio_exposure_by_sector_ratio{") == len(snap["exposure_by_sector"])
    assert run.total("portfolio", "quorum_portfolio_orders_proposed_total") == len(run.records["orders.proposed"])
    targets = run.records["portfolio.targets"]
    assert run.value("portfolio", "quorum_portfolio_optimiser_solve_duration_seconds_count") == len(targets) > 0
    assert run.value("portfolio", "quorum_portfolio_optimiser_solve_duration_seconds_sum") == pytest.approx(
        sum(t["solve_ms"] for t in targets) / 1000)


def test_execution_counts_fills_notional_and_reports(run: Run) -> None:
    fills = run.records["exec.fills"]
    assert fills
    assert run.total("execution", "quorum_execution_fills_total") == len(fills)
    assert run.total("execution", "quorum_execution_filled_notional_total") == pytest.approx(
        sum(abs(f["notional"]) for f in fills))
    with_slippage = [f for f in fills if f["slippage_bps"] is not None]
    assert run.value("execution", "quorum_execution_slippage_bps_count") == len(with_slippage)
    reports = Counter(r["status"] for r in run.records["exec.reports"])
    for status, n in reports.items():
        assert run.value("execution", "quorum_execution_reports_total", status=status) == n
    assert run.value("execution", "quorum_execution_sidecar_gate_enabled") == 0


def test_signals_decisions_regime_and_critic(run: Run) -> None:
    signals = Counter((s["agent_id"], s["strategy"]) for s in run.records["signals.raw"])
    for (agent, strategy), n in signals.items():
        assert run.value("alpha", "quorum_alpha_signals_total", agent_id=agent, strategy=strategy) == n
    actions = Counter(d["action"] for d in run.records["signals.decisions"])
    for action, n in actions.items():
        assert run.value("manager", "quorum_manager_decisions_total", action=action) == n
    last = run.records["regime.state"][-1]
    assert run.value("regime", "quorum_regime_state", scope=last["scope"], label=last["label"]) == 1
    assert run.value("regime", "quorum_regime_fits_total") == run.value(
        "regime", "quorum_regime_fit_duration_seconds_count") > 0
    reports = run.records["critic.reports"]
    assert run.value("critic", "quorum_critic_reports_total") == len(reports) > 0
    pnl: Counter[str] = Counter()
    for report in reports:
        for a in report["attribution"]:
            pnl[a["agent_id"], a["strategy"]] += a["pnl_contribution"]
    for (agent, strategy), value in pnl.items():
        assert run.value("critic", "quorum_critic_agent_pnl_contribution_value", agent_id=agent,
                         strategy=strategy) == pytest.approx(value)


@pytest.mark.parametrize("reason,code", [
    ("sidecar PRICE_COLLAR: 5% off the mark", "PRICE_COLLAR"),
    ("sidecar SIDECAR_UNAVAILABLE: timeout", "SIDECAR_UNAVAILABLE"),
    ("sidecar MAX_POSITION", "MAX_POSITION"), ("venue: no liquidity", None), (None, None), ("sidecar ", "UNKNOWN"),
])
def test_sidecar_reason_of_a_report(reason: str | None, code: str | None) -> None:
    assert sidecar_reason(reason) == code
