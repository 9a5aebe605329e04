"""The execution service's own metrics: fills, filled notional, fees, slippage, order reports, sidecar rejects.

Fills and reports are observed as the engine publishes them (its publisher is wrapped; the engine is
untouched); a ``REJECTED`` report whose reason starts with ``sidecar`` counts as a sidecar reject by its
reason code (``SIDECAR_UNAVAILABLE`` when the sidecar did not answer). Working orders, the trading state
execution follows, duplicate submissions and the orders a restart could not track again are read from
the engine at scrape time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from quorum_common.runtime.metrics import ServiceMetrics, one_hot, tap_published

from quorum_execution.engine import ExecutionEngine
from quorum_execution.reports import FILLS_TOPIC, REPORTS_TOPIC

SLIPPAGE_BUCKETS = (-100.0, -50.0, -20.0, -10.0, -5.0, -2.0, -1.0, 0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0)
TRADING_STATES = ("ACTIVE", "REDUCING", "HALTED")


def sidecar_reason(reason: str | None) -> str | None:
    """The sidecar's reason code in a report reason (``sidecar PRICE_COLLAR: ...`` → ``PRICE_COLLAR``), or None."""
    if not reason or not reason.startswith("sidecar "):
        return None
    return reason[len("sidecar "):].split(":", 1)[0].strip() or "UNKNOWN"


class ExecutionStateCollector(Collector):
    """Working orders, the trading state execution follows, and duplicate submissions refused."""

    def __init__(self, engine: ExecutionEngine, prefix: str) -> None:
        self.engine = engine
        self.prefix = prefix

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        """Read the engine's state now."""
        e, p = self.engine, self.prefix
        yield GaugeMetricFamily(f"{p}_working_orders", "Orders working at the venue.", value=len(e.working))
        yield one_hot(f"{p}_trading_state", "1 for the trading state execution follows, else 0.", "state",
                      TRADING_STATES, e.trading_state)
        yield CounterMetricFamily(f"{p}_duplicate_orders", "Submissions already in the journal, not sent again.",
                                  value=e.duplicates)
        yield GaugeMetricFamily(f"{p}_sidecar_gate_enabled", "1 when orders are checked by the C++ sidecar.",
                                value=1.0 if e.gate is not None else 0.0)
        yield GaugeMetricFamily(f"{p}_untracked_orders", "Orders an earlier run left working whose SubmitOrder record "
                                "was gone at start: their fills are not reported.", value=len(e.untracked))


def instrument(engine: ExecutionEngine, metrics: ServiceMetrics) -> None:
    """Register the execution service's metrics on ``metrics.registry``."""
    fills = metrics.counter("fills_total", "Fills, by side and asset class.", ["side", "asset_class"])
    notional = metrics.counter("filled_notional_total", "Filled notional, in quote currency, by asset class.",
                               ["asset_class"])
    fees = metrics.counter("fees_total", "Fees charged on fills, in fee currency.", ["currency"])
    slippage = metrics.histogram("slippage_bps", "Signed slippage of a fill against its decision price "
                                 "(positive = worse).", buckets=SLIPPAGE_BUCKETS)
    reports = metrics.counter("reports_total", "Execution reports, by status.", ["status"])
    sidecar = metrics.counter("sidecar_rejects_total", "Orders the C++ sidecar refused, by reason.", ["reason"])
    metrics.registry.register(ExecutionStateCollector(engine, metrics.prefix))
    def observed(topic: str, record: dict[str, Any]) -> None:
        if topic == FILLS_TOPIC:
            fills.labels(record["side"], record["asset_class"]).inc()
            notional.labels(record["asset_class"]).inc(abs(record["notional"]))
            fees.labels(record["fee_currency"]).inc(max(0.0, record["fee"]))
            if record.get("slippage_bps") is not None:
                slippage.observe(record["slippage_bps"])
        elif topic == REPORTS_TOPIC:
            reports.labels(record["status"]).inc()
            reason = sidecar_reason(record["reason"]) if record["status"] == "REJECTED" else None
            if reason is not None:
                sidecar.labels(reason).inc()

    tap_published(engine, observed)
