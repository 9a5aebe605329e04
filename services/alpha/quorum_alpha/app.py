"""The alpha service as its own process: ``quorum-alpha`` (or ``python -m quorum_alpha.app``)."""

from __future__ import annotations

from quorum_common.runtime.config import load_settings
from quorum_common.runtime.service import ServiceSpec, run_kafka_service

from quorum_alpha.config import AlphaSettings
from quorum_alpha.engine import AlphaEngine
from quorum_alpha.metrics import instrument

SPEC = ServiceSpec(name="alpha", settings_cls=AlphaSettings, engine=lambda s, pub: AlphaEngine(s, pub),
                   instrument=instrument)


def main() -> None:
    """Consume ``md.bars`` (and ``md.book`` with the book agent) and publish ``signals.raw`` until stopped."""
    run_kafka_service(SPEC, load_settings(AlphaSettings))


if __name__ == "__main__":
    main()
