"""The manager's own metrics: decisions by action, their combined scores, the regime the votes ran under.

Decisions are observed as the engine publishes them (its publisher is wrapped; the engine is untouched).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from quorum_common.runtime.metrics import ServiceMetrics, tap_published

from quorum_manager.engine import ManagerEngine

DECISIONS_TOPIC = "signals.decisions"
SCORE_BUCKETS = (-1.0, -0.6, -0.3, -0.1, 0.0, 0.1, 0.3, 0.6, 1.0)


class RegimeCollector(Collector):
    """The regime label of the latest decision (1 for it, 0 for the labels seen before)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.labels: dict[str, float] = {}

    def set(self, label: str) -> None:
        """Make ``label`` the one in force."""
        self.labels = {**dict.fromkeys(self.labels, 0.0), label: 1.0}

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """One series per regime label seen."""
        family = GaugeMetricFamily(f"{self.prefix}_regime", "1 for the regime label of the latest decision.",
                                   labels=["label"])
        for label, value in sorted(self.labels.items()):
            family.add_metric([label], value)
        yield family


def instrument(engine: ManagerEngine, metrics: ServiceMetrics) -> None:
    """Register the manager's metrics on ``metrics.registry``."""
    decisions = metrics.counter("decisions_total", "Ensemble decisions, by action.", ["action"])
    scores = metrics.histogram("decision_score", "Combined score of a decision (-1..+1).", buckets=SCORE_BUCKETS)
    regime = RegimeCollector(metrics.prefix)
    metrics.registry.register(regime)
    def observed(topic: str, record: dict[str, Any]) -> None:
        if topic == DECISIONS_TOPIC:
            decisions.labels(record["action"]).inc()
            scores.observe(record["combined_score"])
            regime.set(record["regime_label"] or "UNKNOWN")

    tap_published(engine, observed)
