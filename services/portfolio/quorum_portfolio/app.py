"""The portfolio service as its own process: ``quorum-portfolio`` (or ``python -m quorum_portfolio.app``)."""

from __future__ import annotations

from quorum_common.runtime.config import load_settings
from quorum_common.runtime.service import ServiceSpec, run_kafka_service

from quorum_portfolio.config import PortfolioSettings
from quorum_portfolio.engine import PortfolioEngine
from quorum_portfolio.metrics import instrument

SPEC = ServiceSpec(name="portfolio", settings_cls=PortfolioSettings,
                   engine=lambda s, pub: PortfolioEngine(s, pub), instrument=instrument)


def main() -> None:
    """Consume fills, bars, decisions, clock ticks and the mandate; publish targets, orders and snapshots."""
    run_kafka_service(SPEC, load_settings(PortfolioSettings))


if __name__ == "__main__":
    main()
