"""The critic's own metrics: each agent's PnL contribution, rolling Sharpe, slippage, tightenings.

Observed on what the engine publishes (its publisher is wrapped; the engine is untouched): each
``critic.reports`` record adds its window's per-agent PnL to a running total per agent and sets the
window's figures; each ``TIGHTEN_LIMITS`` on ``control.commands`` is counted.
"""

from __future__ import annotations

from typing import Any

from quorum_common.runtime.metrics import ServiceMetrics, tap_published

from quorum_critic.engine import COMMANDS_TOPIC, REPORTS_TOPIC, CriticEngine

_SLIPPAGE = ("mean_bps", "median_bps", "p95_bps")


def instrument(engine: CriticEngine, metrics: ServiceMetrics) -> None:
    """Register the critic's metrics on ``metrics.registry``."""
    pnl = metrics.gauge("agent_pnl_contribution_value", "PnL attributed to an agent's votes since start, in base "
                        "currency.", ["agent_id", "strategy"])
    hit = metrics.gauge("agent_hit_ratio", "Share of an agent's calls that were right, last report window.",
                        ["agent_id", "strategy"])
    signals = metrics.counter("agent_signals_total", "Signals of an agent behind the reviewed decisions.",
                              ["agent_id", "strategy"])
    sharpe = metrics.gauge("rolling_sharpe_ratio", "Rolling Sharpe ratio of the NAV at the last report.")
    drawdown = metrics.gauge("drawdown_ratio", "Drawdown at the last report.")
    slippage = metrics.gauge("slippage_bps", "Slippage statistic of the last report window, in bps.", ["stat"])
    reports = metrics.counter("reports_total", "Critic reports published.")
    tightenings = metrics.counter("limit_tightenings_total", "TIGHTEN_LIMITS commands issued.")
    def on_report(report: dict[str, Any]) -> None:
        reports.inc()
        for agent in report["attribution"]:
            labels = (agent["agent_id"], agent["strategy"])
            pnl.labels(*labels).inc(agent["pnl_contribution"])
            signals.labels(*labels).inc(agent["signals"])
            if agent["hit_rate"] is not None:
                hit.labels(*labels).set(agent["hit_rate"])
        if report["rolling_sharpe"] is not None:
            sharpe.set(report["rolling_sharpe"])
        drawdown.set(report["drawdown"])
        for stat in _SLIPPAGE:
            if report["slippage"].get(stat) is not None:
                slippage.labels(stat).set(report["slippage"][stat])

    def observed(topic: str, record: dict[str, Any]) -> None:
        if topic == REPORTS_TOPIC:
            on_report(record)
        elif topic == COMMANDS_TOPIC and record["command"] == "TIGHTEN_LIMITS":
            tightenings.inc()

    tap_published(engine, observed)
