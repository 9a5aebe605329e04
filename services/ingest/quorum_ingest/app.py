"""The ingest service as its own process: ``quorum-ingest`` (or ``python -m quorum_ingest.app``).

``QUORUM_MODE=replay`` (default) replays the bundled data sets, paced by ``QUORUM_REPLAY_SPEED``;
``QUORUM_MODE=live`` polls the exchange (``QUORUM_EXCHANGE_ID``, ``QUORUM_EXCHANGE_URL``) until stopped.
``QUORUM_MODE=standby`` publishes no data: it only releases the commands sent to a lockstep desk whose replay ended
before (``quorum_common.bus.standby``).
"""

from __future__ import annotations

from collections.abc import Iterator

from quorum_common.engine import Source, SourceItem
from quorum_common.runtime.config import load_settings
from quorum_common.runtime.service import ServiceSpec, run_kafka_service

from quorum_ingest.config import IngestSettings
from quorum_ingest.engine import BarReplaySource
from quorum_ingest.live import LiveSource


class NoData(Source):
    """The source of standby mode: no records (the runtime then stands by, ``QUORUM_LOCKSTEP_STANDBY``)."""

    def records(self) -> Iterator[SourceItem]:
        """Nothing."""
        return iter(())


def make_source(settings: IngestSettings) -> Source:
    """The source of the configured mode."""
    if settings.mode == "standby":
        return NoData()
    return LiveSource(settings) if settings.mode == "live" else BarReplaySource(settings)


SPEC = ServiceSpec(name="ingest", settings_cls=IngestSettings, source=make_source)


def main() -> None:
    """Replay the configured data sets (or poll the exchange) onto Kafka."""
    settings = load_settings(IngestSettings)
    run_kafka_service(SPEC, settings, replay_speed=settings.replay_speed if settings.mode == "replay" else 0.0)


if __name__ == "__main__":
    main()
