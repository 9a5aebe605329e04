"""The risk service's own metrics: order verdicts by reason, trading state, drawdown against its lock.

Verdicts are counted as the engine publishes its ``risk.decisions`` (the publisher is wrapped, the engine
is untouched); state, drawdown and orders in flight are read from the engine at scrape time. Names do not
clash with the C++ sidecar's ``quorum_risk_*`` metrics (``verdicts_total``, ``mode``, ``halted``, ...).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from quorum_common.runtime.metrics import ServiceMetrics, one_hot, tap_published

from quorum_risk.engine import DECISIONS, RiskEngine
from quorum_risk.state import RANK


class RiskStateCollector(Collector):
    """Trading state (one series per state, 1 for the one in force), drawdown, lock and orders in flight."""

    def __init__(self, engine: RiskEngine, prefix: str) -> None:
        self.engine = engine
        self.prefix = prefix

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """Read the engine's state now."""
        e, p = self.engine, self.prefix
        yield one_hot(f"{p}_trading_state", "1 for the trading state in force (ACTIVE, REDUCING, HALTED), else 0.",
                      "state", RANK, e.state)
        yield GaugeMetricFamily(f"{p}_trading_state_sequence", "Sequence of the trading state in force.",
                                value=e.sequence)
        yield GaugeMetricFamily(f"{p}_drawdown_ratio", "Drawdown from peak NAV as the risk service sees it.",
                                value=e.book.drawdown)
        lock = GaugeMetricFamily(f"{p}_drawdown_lock_ratio", "Drawdown at which trading moves to REDUCING: the "
                                 "drawdown_lock limit, or deeper after a risk officer resumed beyond it (absent until "
                                 "a mandate is compiled).")
        if e.drawdown_lock_level is not None:
            lock.add_metric([], e.drawdown_lock_level)
        yield lock
        yield GaugeMetricFamily(f"{p}_inflight_orders", "Approved orders not yet final at the venue.",
                                value=len(e.book.inflight))


def instrument(engine: RiskEngine, metrics: ServiceMetrics) -> None:
    """Register the risk service's metrics on ``metrics.registry``."""
    decisions = metrics.counter("order_decisions_total", "Orders checked, by verdict and reason code.",
                                ["verdict", "reason"])
    def observed(topic: str, record: dict[str, Any]) -> None:
        if topic == DECISIONS:
            decisions.labels(record["verdict"], record["reason_code"]).inc()

    tap_published(engine, observed)
    metrics.registry.register(RiskStateCollector(engine, metrics.prefix))
