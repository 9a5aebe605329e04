"""The execution service as its own process: ``quorum-execution`` (or ``python -m quorum_execution.app``)."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from quorum_common.bus.base import Publisher
from quorum_common.runtime.config import load_settings
from quorum_common.runtime.service import ServiceSpec, run_kafka_service

from quorum_execution.config import ExecutionSettings
from quorum_execution.costs import CostModel
from quorum_execution.engine import ExecutionEngine, paper_exchange
from quorum_execution.metrics import instrument
from quorum_execution.restore import read_orders_in_doubt, read_report_history
from quorum_execution.venue import Venue

log = logging.getLogger(__name__)


def make_venue(settings: ExecutionSettings) -> Venue:
    """The venue the settings name: the paper exchange, or a ccxt exchange with the configured keys."""
    if settings.venue == "paper":
        return paper_exchange(settings)
    import ccxt

    from quorum_execution.ccxt_venue import CcxtVenue

    try:
        exchange_cls = getattr(ccxt, settings.ccxt_exchange)
    except AttributeError:
        raise ValueError(f"QUORUM_CCXT_EXCHANGE: unknown ccxt exchange {settings.ccxt_exchange!r}") from None
    config: dict[str, object] = {"enableRateLimit": True}
    if settings.ccxt_api_key is not None:
        config["apiKey"] = settings.ccxt_api_key.get_secret_value()
    if settings.ccxt_secret is not None:
        config["secret"] = settings.ccxt_secret.get_secret_value()
    exchange = exchange_cls(config)
    if settings.ccxt_sandbox:
        exchange.set_sandbox_mode(True)
    return CcxtVenue(exchange, name=settings.venue_name or None, markets=settings.ccxt_markets,
                     fee_model=CostModel.from_settings(settings).fee)


def build_engine(settings: ExecutionSettings, publisher: Publisher, history: Iterable[dict[str, Any]] = (),
                 venue: Venue | None = None, orders: Iterable[dict[str, Any]] = ()) -> ExecutionEngine:
    """The engine with ``venue`` (default: the configured one) and a sidecar gate when a socket is set.

    Its journal, and the gate's positions, are restored from ``history``, the ``exec.reports`` records of
    earlier runs (a report redelivered by at-least-once counts once). The orders they leave working are
    tracked again, given their ``SubmitOrder`` records in ``orders``; one whose record is missing (gone
    from ``orders.approved``) is named in a warning: its later fills cannot be reported.
    """
    engine = ExecutionEngine(settings, publisher, venue=venue or make_venue(settings))
    reports: dict[str, list[dict[str, Any]]] = defaultdict(list)
    seen: set[str] = set()
    for report in history:
        engine.journal.restore(report)
        if engine.gate is not None:
            engine.gate.remember(report)
        if report["event_id"] not in seen:
            seen.add(report["event_id"])
            reports[report["client_order_id"]].append(report)
    in_doubt = set(engine.journal.in_doubt())
    for order in orders:
        cid = order["client_order_id"]
        if cid in in_doubt and cid not in engine.resuming:
            engine.resume(order, reports[cid])
    engine.untracked = sorted(in_doubt - set(engine.resuming))
    if engine.untracked:
        log.warning("orders left working by an earlier run have no SubmitOrder record; their fills are not tracked",
                    extra={"client_order_ids": engine.untracked[:20], "count": len(engine.untracked)})
    return engine


SPEC = ServiceSpec(name="execution", settings_cls=ExecutionSettings, engine=build_engine, instrument=instrument)


def main() -> None:
    """Restore the journal from ``exec.reports``, then consume orders, bars and the trading state until stopped."""
    settings = load_settings(ExecutionSettings)
    history = read_report_history(settings)
    orders = read_orders_in_doubt(settings, history)
    run_kafka_service(replace(SPEC, engine=lambda s, pub: build_engine(s, pub, history, orders=orders)), settings)


if __name__ == "__main__":
    main()
