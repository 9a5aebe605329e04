"""The Grafana dashboards of the desk, written as JSON into ``deploy/helm/quorum/dashboards/``.

``python deploy/prometheus/dashboards.py`` rewrites the files; ``tests/monitoring`` checks that they are
up to date and evaluates every panel's PromQL against a Prometheus scraping a running desk. A panel on a
metric that no service exports yet is titled ``[PENDING] ...`` and says so in its description; the test
lists those metrics explicitly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "helm" / "quorum" / "dashboards"
PENDING = "[PENDING] "
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
EVERY_SERVICE = '{{__name__=~"quorum_.+_{what}"}}'


@dataclass(frozen=True)
class Panel:
    """One Grafana panel: a title, its PromQL targets (expression, legend) and how to show them."""

    title: str
    targets: tuple[tuple[str, str], ...]
    unit: str = "short"
    kind: str = "timeseries"
    description: str = ""
    width: int = 12


@dataclass(frozen=True)
class Dashboard:
    """A dashboard: uid (also the file name), title and panels laid out two per row."""

    uid: str
    title: str
    description: str
    panels: tuple[Panel, ...] = field(default_factory=tuple)


def p99(metric_bucket: str, by: str = "") -> str:
    """The 99th percentile of a histogram over 5 minutes (``by``: extra grouping labels)."""
    return f"histogram_quantile(0.99, sum by (le{', ' + by if by else ''}) (rate({metric_bucket}[5m])))"


def quantile(q: float, metric_bucket: str) -> str:
    """The ``q`` quantile of a histogram over 5 minutes."""
    return f"histogram_quantile({q}, sum by (le) (rate({metric_bucket}[5m])))"


def every_service(what: str) -> str:
    """A selector of the generic metric ``quorum_<service>_<what>`` of every service."""
    return EVERY_SERVICE.format(what=what)


OVERVIEW = Dashboard("quorum-overview", "Quorum / Desk overview", "NAV, drawdown, state, regime, orders, fills.", (
    Panel("NAV", (("sum by (portfolio_id) (quorum_portfolio_nav_value)", "{{portfolio_id}}"),), "currencyUSD"),
    Panel("Drawdown against the risk lock", (("max(quorum_portfolio_drawdown_ratio)", "drawdown"),
                                             ("max(quorum_risk_drawdown_lock_ratio)", "lock")), "percentunit"),
    Panel("Trading state (risk service)", (("max by (state) (quorum_risk_trading_state)", "{{state}}"),),
          kind="state-timeline", description="1 for the state in force: ACTIVE, REDUCING (reduce-only), HALTED."),
    Panel("Market regime", (("max by (label) (quorum_regime_state)", "{{label}}"),), kind="state-timeline"),
    Panel("Orders by verdict (5 min)", (("sum by (verdict) (increase(quorum_risk_order_decisions_total[5m]))",
                                         "{{verdict}}"),)),
    Panel("Fills per second", (("sum by (side) (rate(quorum_execution_fills_total[5m]))", "{{side}}"),), "ops"),
    Panel("PnL", (("sum(quorum_portfolio_realised_pnl_value)", "realised"),
                  ("sum(quorum_portfolio_unrealised_pnl_value)", "unrealised"),
                  ("sum(quorum_portfolio_fees_paid_value)", "fees")), "currencyUSD"),
    Panel("PnL contribution by agent", (("sum by (agent_id) (quorum_critic_agent_pnl_contribution_value)",
                                         "{{agent_id}}"),), "currencyUSD",
          description="Attributed by the critic at each report (cumulative since the critic started)."),
))

RISK = Dashboard("quorum-risk", "Quorum / Risk", "Both risk layers: verdicts, state, drawdown, exposure.", (
    Panel("Python risk: orders by verdict and reason (5 min)",
          (("sum by (verdict, reason) (increase(quorum_risk_order_decisions_total[5m]))", "{{verdict}} {{reason}}"),)),
    Panel("C++ sidecar: verdicts by reason (5 min)",
          (("sum by (verdict, reason) (increase(quorum_risk_verdicts_total[5m]))", "{{verdict}} {{reason}}"),)),
    Panel("Trading state (risk service)", (("max by (state) (quorum_risk_trading_state)", "{{state}}"),),
          kind="state-timeline"),
    Panel("C++ sidecar mode and halts", (("max(quorum_risk_mode)", "mode (0 active, 1 reducing, 2 halted)"),
                                         ("max by (cause) (quorum_risk_halted)", "halted: {{cause}}"))),
    Panel("Drawdown against the risk lock", (("max(quorum_risk_drawdown_ratio)", "drawdown"),
                                             ("max(quorum_risk_drawdown_lock_ratio)", "lock")), "percentunit"),
    Panel("Exposure by sector", (("sum by (sector) (quorum_portfolio_exposure_by_sector_ratio)", "{{sector}}"),),
          "percentunit"),
    Panel("Exposure by asset class", (("sum by (asset_class) (quorum_portfolio_exposure_by_asset_class_ratio)",
                                       "{{asset_class}}"),), "percentunit"),
    Panel("Gross and net exposure", (("sum(quorum_portfolio_gross_exposure_ratio)", "gross"),
                                     ("sum(quorum_portfolio_net_exposure_ratio)", "net")), "percentunit"),
    Panel("Orders in flight", (("sum(quorum_risk_inflight_orders)", "risk service"),
                               ("sum(quorum_risk_open_orders)", "C++ sidecar"))),
    Panel("C++ sidecar check latency p99", ((p99("quorum_risk_check_latency_seconds_bucket"), "p99"),), "s"),
    Panel("Critic limit tightenings (1 h)", (("sum(increase(quorum_critic_limit_tightenings_total[1h]))",
                                              "tightenings"),)),
))

EXECUTION = Dashboard("quorum-execution", "Quorum / Execution", "Orders, fills, slippage, fees.", (
    Panel("Orders proposed by origin (5 min)",
          (("sum by (origin) (increase(quorum_portfolio_orders_proposed_total[5m]))", "{{origin}}"),)),
    Panel("Execution reports by status (5 min)", (("sum by (status) (increase(quorum_execution_reports_total[5m]))",
                                                   "{{status}}"),)),
    Panel("Fills per second by side", (("sum by (side) (rate(quorum_execution_fills_total[5m]))", "{{side}}"),), "ops"),
    Panel("Filled notional per second by asset class",
          (("sum by (asset_class) (rate(quorum_execution_filled_notional_total[5m]))", "{{asset_class}}"),)),
    Panel("Slippage against decision price", ((quantile(0.5, "quorum_execution_slippage_bps_bucket"), "p50"),
                                              (quantile(0.95, "quorum_execution_slippage_bps_bucket"), "p95")),
          description="Basis points, positive = worse than decided."),
    Panel("Critic slippage (last report window)", (("max by (stat) (quorum_critic_slippage_bps)", "{{stat}}"),)),
    Panel("Working orders", (("sum(quorum_execution_working_orders)", "working"),)),
    Panel("Fees per second", (("sum by (currency) (rate(quorum_execution_fees_total[5m]))", "{{currency}}"),)),
    Panel("Trading state seen by execution", (("max by (state) (quorum_execution_trading_state)", "{{state}}"),),
          kind="state-timeline"),
    Panel("Sidecar gate", (("max(quorum_execution_sidecar_gate_enabled)", "gate on"),), kind="stat"),
))

PIPELINE = Dashboard("quorum-pipeline", "Quorum / Pipeline health", "Every service: throughput, lag, latency, DLQ.", (
    Panel("Messages in per second by service and topic",
          ((f"sum by (job, topic) (rate({every_service('messages_in_total')}[5m]))", "{{job}} {{topic}}"),), "ops"),
    Panel("Messages out per second by service and topic",
          ((f"sum by (job, topic) (rate({every_service('messages_out_total')}[5m]))", "{{job}} {{topic}}"),), "ops"),
    Panel("Consumer lag by service and topic",
          ((f"sum by (job, topic) ({every_service('consumer_lag_messages')})", "{{job}} {{topic}}"),)),
    Panel("Handler latency p99 by service", ((p99(every_service("handler_duration_seconds_bucket"), "job"),
                                              "{{job}}"),), "s"),
    Panel("Dead letters since start by service, topic and reason",
          ((f"sum by (job, topic, reason) ({every_service('dead_letters_total')})", "{{job}} {{topic}} {{reason}}"),),
          description="Records sent to dlq.<topic>; the alert QuorumDeadLetters fires on new ones."),
    Panel("Market data in (md.bars per second)",
          (('sum(rate(quorum_ingest_messages_out_total{topic="md.bars"}[5m]))', "ingest"),), "ops"),
    Panel("Lockstep phase time p99 by tick kind",
          ((p99("quorum_ingest_phase_duration_seconds_bucket", "kind"), "{{kind}}"),), "s",
          description="From ingest's clock tick to the last phase report it waits for: the desk's time for that "
                      "phase (README: phases and lockstep)."),
    Panel("Phase reports per second by service",
          (("sum by (service) (rate(quorum_ingest_phase_reports_total[5m]))", "{{service}}"),), "ops",
          description="Ingest waits only for the services that may have published in a phase; these reported."),
    Panel("Engine rebuild at start by service",
          ((f"max by (job) ({every_service('rebuild_duration_seconds')})", "{{job}} seconds"),
           (f"max by (job) ({every_service('rebuilding')})", "{{job}} rebuilding")),
          description="A restarted lockstep service rebuilds its engine from its input history before it consumes "
                      "(README: phases and lockstep): the time it took (or has taken so far) and 1 while it runs; "
                      "quorum_<service>_rebuild_records counts the records handed to the engine. All 0: no rebuild."),
    Panel("Scrape targets up", (("up", "{{job}}"),), kind="state-timeline"),
))

MODELS = Dashboard("quorum-models", "Quorum / Models", "Regime HMM, optimiser, ensemble and agents; model pods.", (
    Panel("Regime HMM fit time", ((quantile(0.5, "quorum_regime_fit_duration_seconds_bucket"), "p50"),
                                  (quantile(0.95, "quorum_regime_fit_duration_seconds_bucket"), "p95")), "s"),
    Panel("Regime state probabilities", (("max by (label) (quorum_regime_state_probability_ratio)", "{{label}}"),),
          "percentunit"),
    Panel("Optimiser solve time", ((quantile(0.5, "quorum_portfolio_optimiser_solve_duration_seconds_bucket"), "p50"),
                                   (quantile(0.95, "quorum_portfolio_optimiser_solve_duration_seconds_bucket"), "p95")),
          "s"),
    Panel("Optimiser solves by status (1 h)",
          (("sum by (status, fallback) (increase(quorum_portfolio_optimiser_solves_total[1h]))",
            "{{status}} fallback={{fallback}}"),)),
    Panel("Signals per second by agent", (("sum by (agent_id) (rate(quorum_alpha_signals_total[5m]))",
                                           "{{agent_id}}"),), "ops"),
    Panel("Decisions by action (5 min)", (("sum by (action) (increase(quorum_manager_decisions_total[5m]))",
                                           "{{action}}"),)),
    Panel("Agent hit rate (last report)", (("max by (agent_id) (quorum_critic_agent_hit_ratio)", "{{agent_id}}"),),
          "percentunit"),
    Panel("Rolling Sharpe (critic)", (("max(quorum_critic_rolling_sharpe_ratio)", "Sharpe"),)),
    Panel(PENDING + "Forecaster inference latency",
          ((quantile(0.95, "quorum_forecaster_inference_duration_seconds_bucket"), "p95"),), "s",
          description="PENDING: the forecaster (TFT) service does not exist yet; this panel shows data once it "
                      "exports quorum_forecaster_inference_duration_seconds."),
    Panel(PENDING + "Sentiment inference latency",
          ((quantile(0.95, "quorum_sentiment_inference_duration_seconds_bucket"), "p95"),), "s",
          description="PENDING: the sentiment (FinBERT) service does not exist yet; this panel shows data once it "
                      "exports quorum_sentiment_inference_duration_seconds."),
))

DASHBOARDS = (OVERVIEW, RISK, EXECUTION, PIPELINE, MODELS)


def panel_json(panel: Panel, pid: int, x: int, y: int) -> dict:
    """The Grafana JSON of one panel at grid position (x, y)."""
    return {
        "id": pid, "type": panel.kind, "title": panel.title, "description": panel.description,
        "datasource": DATASOURCE, "gridPos": {"x": x, "y": y, "w": panel.width, "h": 8},
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True}},
        "targets": [{"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": expr, "legendFormat": legend}
                    for i, (expr, legend) in enumerate(panel.targets)],
    }


def dashboard_json(d: Dashboard) -> dict:
    """The Grafana JSON of a dashboard (schema 39), with a Prometheus data source variable."""
    panels, x, y = [], 0, 0
    for pid, panel in enumerate(d.panels, start=1):
        if x + panel.width > 24:
            x, y = 0, y + 8
        panels.append(panel_json(panel, pid, x, y))
        x += panel.width
    return {
        "uid": d.uid, "title": d.title, "description": d.description, "tags": ["quorum"], "timezone": "utc",
        "schemaVersion": 39, "version": 1, "editable": True, "refresh": "10s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {"list": [{"name": "datasource", "label": "Data source", "type": "datasource",
                                 "query": "prometheus", "current": {}, "hide": 0}]},
        "annotations": {"list": []},
        "panels": panels,
    }


def render() -> dict[str, str]:
    """File name → JSON text of every dashboard."""
    return {f"{d.uid}.json": json.dumps(dashboard_json(d), indent=2) + "\n" for d in DASHBOARDS}


def main() -> None:
    """Write every dashboard into :data:`OUT`."""
    OUT.mkdir(parents=True, exist_ok=True)
    for name, text in render().items():
        (OUT / name).write_text(text)
        print(f"wrote {OUT / name}")


if __name__ == "__main__":
    main()
