"""The portfolio service's own metrics: NAV, drawdown, exposure by sector and asset class, orders, optimiser.

Everything is observed on what the engine publishes (its publisher is wrapped; the engine is untouched):
the latest ``portfolio.snapshots`` record is kept and exported at scrape time, so a sector that left the
book disappears from the exposure series; ``orders.proposed`` and ``portfolio.targets`` feed counters
and the optimiser's solve-time histogram (the ``solve_ms`` the engine measured).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from quorum_common.runtime.metrics import ServiceMetrics, tap_published

from quorum_portfolio.engine import ORDERS_TOPIC, SNAPSHOTS_TOPIC, TARGETS_TOPIC, PortfolioEngine

SOLVE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_SCALARS = (  # snapshot field, metric suffix, help
    ("nav", "nav_value", "Net asset value, in base currency."),
    ("cash", "cash_value", "Cash balance, in base currency."),
    ("peak_nav", "peak_nav_value", "Highest NAV so far, in base currency."),
    ("drawdown", "drawdown_ratio", "Drawdown from peak NAV, a non-negative fraction."),
    ("realised_pnl", "realised_pnl_value", "Realised PnL, in base currency."),
    ("unrealised_pnl", "unrealised_pnl_value", "Unrealised PnL, in base currency."),
    ("fees_paid", "fees_paid_value", "Fees paid so far, in base currency."),
    ("gross_exposure", "gross_exposure_ratio", "Sum of absolute market values as a fraction of NAV."),
    ("net_exposure", "net_exposure_ratio", "Sum of signed market values as a fraction of NAV."),
    ("open_orders", "open_orders", "Orders in flight (proposed or working, not final)."),
)


class SnapshotCollector(Collector):
    """Exports the latest published portfolio snapshot."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.snapshot: dict[str, Any] | None = None
        self._lock = threading.Lock()

    def update(self, snapshot: dict[str, Any]) -> None:
        """Keep ``snapshot`` as the one to export."""
        with self._lock:
            self.snapshot = snapshot

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """One gauge per scalar of the snapshot, exposure per sector and asset class, weight per symbol."""
        with self._lock:
            snap = self.snapshot
        p = self.prefix
        for field, suffix, doc in _SCALARS:
            family = GaugeMetricFamily(f"{p}_{suffix}", doc, labels=["portfolio_id"])
            if snap is not None and snap.get(field) is not None:
                family.add_metric([snap["portfolio_id"]], float(snap[field]))
            yield family
        for field, label in (("exposure_by_sector", "sector"), ("exposure_by_asset_class", "asset_class")):
            family = GaugeMetricFamily(f"{p}_{field}_ratio", f"Gross exposure per {label} as a fraction of NAV.",
                                       labels=["portfolio_id", label])
            for name, value in sorted((snap or {}).get(field, {}).items()):
                family.add_metric([snap["portfolio_id"], name], value)
            yield family
        weights = GaugeMetricFamily(f"{p}_position_weight_ratio", "Market value of a position as a fraction of NAV.",
                                    labels=["portfolio_id", "symbol"])
        for pos in (snap or {}).get("positions", []):
            weights.add_metric([snap["portfolio_id"], pos["symbol"]], pos["weight"])
        yield weights


def instrument(engine: PortfolioEngine, metrics: ServiceMetrics) -> None:
    """Register the portfolio service's metrics on ``metrics.registry``."""
    orders = metrics.counter("orders_proposed_total", "Orders proposed, by side and origin.", ["side", "origin"])
    solves = metrics.counter("optimiser_solves_total", "Optimiser solves, by solver status and fallback.",
                             ["status", "fallback"])
    solve_seconds = metrics.histogram("optimiser_solve_duration_seconds", "Wall time of one optimiser solve.",
                                      buckets=SOLVE_BUCKETS)
    snapshots = SnapshotCollector(metrics.prefix)
    metrics.registry.register(snapshots)
    def observed(topic: str, record: dict[str, Any]) -> None:
        if topic == SNAPSHOTS_TOPIC:
            snapshots.update(record)
        elif topic == ORDERS_TOPIC:
            orders.labels(record["side"], record["origin"]).inc()
        elif topic == TARGETS_TOPIC:
            solves.labels(str(record["solver_status"]), str(bool(record["fallback"])).lower()).inc()
            if record.get("solve_ms") is not None:
                solve_seconds.observe(record["solve_ms"] / 1000.0)

    tap_published(engine, observed)
