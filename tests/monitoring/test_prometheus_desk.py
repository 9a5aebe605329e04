"""A real Prometheus scrapes a running desk over the local broker: every dashboard panel's expression
returns data, every alert rule evaluates without error, and the exported figures agree with each other.
"""

from __future__ import annotations

import time
from types import ModuleType
from typing import Any

import httpx
import pytest
from confluent_kafka import Producer

pytestmark = pytest.mark.kafka
PENDING_METRICS = {"quorum_forecaster_inference_duration_seconds_bucket",
                   "quorum_sentiment_inference_duration_seconds_bucket"}
"""Metrics of model services that do not exist yet; only ``[PENDING]`` panels may use them."""


def _value(mon: Any, expr: str) -> float:
    result = mon.query(expr)
    assert len(result) == 1, f"{expr}: expected one series, got {result}"
    return float(result[0]["value"][1])


@pytest.fixture(scope="module")
def replayed(monitoring: Any, kafka_bootstrap: str) -> Any:
    """The desk after its replay, with one malformed bar dead-lettered, scraped by Prometheus since."""
    ingest = monitoring.processes.procs["ingest"]
    monitoring.wait_for(lambda: ingest.poll() is not None, 150, "the ingest replay to finish", step_s=1)
    assert ingest.returncode == 0, monitoring.processes.log_tail("ingest")
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    producer.produce(monitoring.prefix + "md.bars", value=b"not an avro record", key=b"AAPL")
    assert producer.flush(10) == 0
    monitoring.wait_for(lambda: monitoring.query('sum({__name__=~"quorum_.+_dead_letters_total"}) > 0'), 60,
                        "the malformed bar to be dead-lettered and scraped")
    lag = 'sum by (job) ({__name__=~"quorum_.+_consumer_lag_messages"})'
    monitoring.wait_for(lambda: len(monitoring.query(lag)) == 7 and not monitoring.query(f"{lag} > 0"), 60,
                        "every consumer to catch up")
    time.sleep(2)  # one more scrape of the final state
    return monitoring


def test_every_panel_returns_data(replayed: Any, dashboards: ModuleType, panel_target: tuple[str, str, str]) -> None:
    dashboard, title, expr = panel_target
    PENDING = dashboards.PENDING
    pending = sorted(m for m in PENDING_METRICS if m in expr)
    if title.startswith(PENDING):
        assert pending, f"{dashboard} / {title}: a [PENDING] panel must use a pending metric"
        assert replayed.query(expr) == [], f"{dashboard} / {title}: the metric exists now; drop the marker"
        return
    assert not pending, f"{dashboard} / {title} uses {pending} but is not marked {PENDING!r}"
    assert replayed.query(expr), f"{dashboard} / {title}: no data for {expr}"


def test_every_alert_evaluates(replayed: Any, alert_rule: dict) -> None:
    rule = alert_rule
    replayed.query(rule["expr"])  # a parse or evaluation error fails here
    rules = httpx.get(f"{replayed.prometheus}/api/v1/rules", timeout=10).json()["data"]["groups"]
    loaded = {r["name"]: r for g in rules for r in g["rules"]}
    assert loaded[rule["alert"]]["health"] == "ok", loaded[rule["alert"]]


def test_only_the_dead_letter_alert_fires_after_the_malformed_bar(replayed: Any) -> None:
    def firing() -> set[str]:
        return {a["metric"]["alertname"] for a in replayed.query('ALERTS{alertstate="firing"}')}

    replayed.wait_for(lambda: "QuorumDeadLetters" in firing(), 30, "QuorumDeadLetters to fire")
    assert firing() == {"QuorumDeadLetters"}  # no halt, lock, lag or sidecar alert on a healthy run


def test_exported_figures_agree(replayed: Any) -> None:
    q = lambda e: _value(replayed, e)  # noqa: E731
    proposed = q("sum(quorum_portfolio_orders_proposed_total)")
    assert proposed > 0
    assert q("sum(quorum_risk_order_decisions_total)") == proposed, "every proposed order gets one verdict"
    approved = q('sum(quorum_risk_order_decisions_total{verdict="APPROVED"})')
    assert q('sum(quorum_execution_reports_total{status=~"ACCEPTED|REJECTED"})') >= approved > 0
    assert q("sum(quorum_execution_fills_total)") > 0
    assert q("sum(quorum_risk_trading_state)") == 1 and q("sum(quorum_execution_trading_state)") == 1
    assert q("sum(quorum_regime_state)") == 1 and q("quorum_regime_fits_total") > 0
    assert abs(q("sum(quorum_regime_state_probability_ratio)") - 1) < 1e-6
    assert q("sum(quorum_alpha_signals_total)") == q('quorum_manager_messages_in_total{topic="signals.raw"}')
    nav, cash, net = (q(f"sum(quorum_portfolio_{m})") for m in ("nav_value", "cash_value", "net_exposure_ratio"))
    assert nav == pytest.approx(cash + net * nav, rel=1e-9)
    assert q("max(quorum_risk_drawdown_lock_ratio)") > 0
    assert q("sum(quorum_critic_reports_total)") > 0
    assert q('sum(quorum_risk_verdicts_total{verdict="approve"})') == 1  # the sidecar: one approved check
    assert q('sum(quorum_risk_verdicts_total{verdict="reject"})') == 1
