"""The regime service as its own process: ``quorum-regime`` (or ``python -m quorum_regime.app``)."""

from __future__ import annotations

from quorum_common.runtime.config import load_settings
from quorum_common.runtime.service import ServiceSpec, run_kafka_service

from quorum_regime.config import RegimeSettings
from quorum_regime.engine import RegimeEngine
from quorum_regime.metrics import instrument

SPEC = ServiceSpec(name="regime", settings_cls=RegimeSettings, engine=lambda s, pub: RegimeEngine(s, pub),
                   instrument=instrument)


def main() -> None:
    """Consume ``md.bars`` and publish ``regime.state`` until stopped."""
    run_kafka_service(SPEC, load_settings(RegimeSettings))


if __name__ == "__main__":
    main()
