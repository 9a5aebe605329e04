"""The manager service as its own process: ``quorum-manager`` (or ``python -m quorum_manager.app``)."""

from __future__ import annotations

from quorum_common.runtime.config import load_settings
from quorum_common.runtime.service import ServiceSpec, run_kafka_service

from quorum_manager.config import ManagerSettings
from quorum_manager.engine import ManagerEngine
from quorum_manager.metrics import instrument

SPEC = ServiceSpec(name="manager", settings_cls=ManagerSettings, engine=lambda s, pub: ManagerEngine(s, pub),
                   instrument=instrument)


def main() -> None:
    """Consume signals, forecasts, sentiment, regime, clock and commands; publish decisions until stopped."""
    run_kafka_service(SPEC, load_settings(ManagerSettings))


if __name__ == "__main__":
    main()
