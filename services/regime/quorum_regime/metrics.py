"""The regime service's own metrics: the regime in force, its probabilities, transitions, HMM fit time.

The latest ``regime.state`` record is observed as the engine publishes it (its publisher is wrapped) and
exported at scrape time; the fit time is measured around the engine's refit step (wall time, for the
operator only: nothing the engine decides reads it; a lagged refit, ``refit_lag_rows`` ≥ 1, runs apart from
that step and is counted in ``fits`` only).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from quorum_common.runtime.metrics import ServiceMetrics, tap_published

from quorum_regime.engine import REGIME_TOPIC, RegimeEngine

FIT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class RegimeCollector(Collector):
    """The label in force (1, other labels of the model 0), each state's probability, and fits so far."""

    def __init__(self, engine: RegimeEngine, prefix: str) -> None:
        self.engine = engine
        self.prefix = prefix
        self.record: dict[str, Any] | None = None
        self._lock = threading.Lock()

    def update(self, record: dict[str, Any]) -> None:
        """Keep the latest published regime."""
        with self._lock:
            self.record = record

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        """Read the latest regime and the engine's fit count now."""
        with self._lock:
            rec = self.record
        p = self.prefix
        state = GaugeMetricFamily(f"{p}_state", "1 for the regime label in force, else 0.", labels=["scope", "label"])
        probs = GaugeMetricFamily(f"{p}_state_probability_ratio", "Filtered probability of each HMM state.",
                                  labels=["scope", "state", "label"])
        if rec is not None:
            for label in sorted(set(rec["state_labels"])):
                state.add_metric([rec["scope"], label], 1.0 if label == rec["label"] else 0.0)
            for i, (label, prob) in enumerate(zip(rec["state_labels"], rec["probabilities"], strict=True)):
                probs.add_metric([rec["scope"], str(i), label], prob)
        yield state
        yield probs
        yield CounterMetricFamily(f"{p}_fits", "Successful HMM fits.", value=self.engine.fits)


def instrument(engine: RegimeEngine, metrics: ServiceMetrics) -> None:
    """Register the regime service's metrics on ``metrics.registry``."""
    transitions = metrics.counter("transitions_total", "Regime label changes, by new label.", ["scope", "label"])
    fit_seconds = metrics.histogram("fit_duration_seconds", "Wall time of one HMM (re)fit.", buckets=FIT_BUCKETS)
    regime = RegimeCollector(engine, metrics.prefix)
    metrics.registry.register(regime)
    refit = engine._refit

    def observed(topic: str, record: dict[str, Any]) -> None:
        if topic == REGIME_TOPIC:
            regime.update(record)
            if record["is_transition"]:
                transitions.labels(record["scope"], record["label"]).inc()

    def timed_refit(ts: int) -> bool:  # the engine reads whether a new model is in force
        started = time.perf_counter()
        try:
            return refit(ts)
        finally:
            fit_seconds.observe(time.perf_counter() - started)

    tap_published(engine, observed)
    engine._refit = timed_refit
