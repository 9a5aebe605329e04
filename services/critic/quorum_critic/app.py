"""The critic service as its own process: ``quorum-critic`` (or ``python -m quorum_critic.app``)."""

from __future__ import annotations

from quorum_common.runtime.config import load_settings
from quorum_common.runtime.service import ServiceSpec, run_kafka_service

from quorum_critic.config import CriticSettings
from quorum_critic.engine import CriticEngine
from quorum_critic.metrics import instrument

SPEC = ServiceSpec(name="critic", settings_cls=CriticSettings, engine=lambda s, pub: CriticEngine(s, pub),
                   instrument=instrument)


def main() -> None:
    """Consume fills, reports, snapshots, regimes, decisions, mandates and clock ticks until stopped."""
    run_kafka_service(SPEC, load_settings(CriticSettings))


if __name__ == "__main__":
    main()
