"""The ingest service as its own process: ``quorum-ingest`` (or ``python -m quorum_ingest.app``)."""

from __future__ import annotations

from quorum_common.runtime.config import load_settings
from quorum_common.runtime.service import ServiceSpec, run_kafka_service

from quorum_ingest.config import IngestSettings
from quorum_ingest.engine import BarReplaySource

SPEC = ServiceSpec(name="ingest", settings_cls=IngestSettings, source=lambda s: BarReplaySource(s))


def main() -> None:
    """Replay the configured data sets onto Kafka, then exit."""
    settings = load_settings(IngestSettings)
    run_kafka_service(SPEC, settings, replay_speed=settings.replay_speed)


if __name__ == "__main__":
    main()
