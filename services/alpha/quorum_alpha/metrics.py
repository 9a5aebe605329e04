"""The alpha service's own metrics: signals per agent and strategy, and their scores.

Observed as the engine publishes ``signals.raw`` (its publisher is wrapped; the engine is untouched).
"""

from __future__ import annotations

from typing import Any

from quorum_common.runtime.metrics import ServiceMetrics, labelled, tap_published

from quorum_alpha.engine import SIGNALS_TOPIC, AlphaEngine

SCORE_BUCKETS = (-1.0, -0.6, -0.3, -0.1, 0.0, 0.1, 0.3, 0.6, 1.0)


def instrument(engine: AlphaEngine, metrics: ServiceMetrics) -> None:
    """Register the alpha service's metrics on ``metrics.registry``."""
    signals = metrics.counter("signals_total", "Signals published, by agent and strategy.", ["agent_id", "strategy"])
    scores = metrics.histogram("signal_score", "Score of a signal (-1..+1), by strategy.", ["strategy"],
                               buckets=SCORE_BUCKETS)
    def observed(topic: str, record: dict[str, Any]) -> None:
        if topic == SIGNALS_TOPIC:
            labelled(signals, record["agent_id"], record["strategy"]).inc()
            labelled(scores, record["strategy"]).observe(record["score"])

    tap_published(engine, observed)
