"""The risk service as its own process: ``quorum-risk`` (or ``python -m quorum_risk.app``).

Over Kafka the engine first restores the compacted history (``control.state``, ``mandate.compiled``,
``portfolio.snapshots``) from the beginning, then joins its consumer group: a restarted risk service
resumes in the state it left, even though its group's offsets are past that history.
"""

from __future__ import annotations

from dataclasses import replace

from quorum_common.bus.base import Publisher
from quorum_common.bus.history import read_to_end
from quorum_common.bus.topic_codec import TopicCodec
from quorum_common.runtime.config import ServiceSettings, load_settings
from quorum_common.runtime.service import ServiceSpec, run_kafka_service

from quorum_risk.config import RiskSettings
from quorum_risk.engine import RiskEngine
from quorum_risk.metrics import instrument

SPEC = ServiceSpec(name="risk", settings_cls=RiskSettings, engine=lambda s, pub: RiskEngine(s, pub),
                   instrument=instrument)
RESTORED_TOPICS = ["control.state", "mandate.compiled", "portfolio.snapshots"]


def restored_engine(settings: ServiceSettings, publisher: Publisher) -> RiskEngine:
    """A risk engine that has replayed the compacted topics of :data:`RESTORED_TOPICS` from Kafka."""
    engine = RiskEngine(settings, publisher)
    engine.restore(read_to_end(settings.kafka_client_config(), TopicCodec(), RESTORED_TOPICS, settings.topic_prefix))
    return engine


def main() -> None:
    """Restore, then consume orders, snapshots, commands, state, mandate and market data until stopped."""
    run_kafka_service(replace(SPEC, engine=restored_engine), load_settings(RiskSettings))


if __name__ == "__main__":
    main()
