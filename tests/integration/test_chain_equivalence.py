"""The same two-service chain (ingest → alpha) gives identical output in-process and over Kafka."""

from __future__ import annotations

import threading

import pytest
from quorum_alpha.app import SPEC as ALPHA
from quorum_alpha.config import AlphaSettings
from quorum_common.bus.inprocess import InProcessBus
from quorum_common.bus.kafka import KafkaBus
from quorum_common.bus.topic_codec import TopicCodec
from quorum_common.runtime.service import publish_source, run_all_inprocess
from quorum_common.testing.kafka_helpers import read_topic
from quorum_ingest.app import SPEC as INGEST
from quorum_ingest.config import IngestSettings

pytestmark = pytest.mark.kafka
INGEST_SETTINGS = IngestSettings(datasets=("GOOG", "BTCUSD"), max_bars=400, clock_ticks=False)
ALPHA_SETTINGS = AlphaSettings()


def _key(sig: dict) -> tuple:
    return sig["symbol"], sig["ts_event"], sig["agent_id"]


def inprocess_signals() -> tuple[list[dict], int]:
    """The signals of the in-process run and the number of bars it replayed."""
    bus = InProcessBus()
    out: list[dict] = []
    bus.tap(lambda m: out.append(m.value) if m.topic == "signals.raw" else None)
    run_all_inprocess(bus, [(INGEST, INGEST_SETTINGS), (ALPHA, ALPHA_SETTINGS)])
    return out, bus.delivered["md.bars"]


@pytest.mark.parametrize("delivery", ["exactly_once", "at_least_once"])
def test_inprocess_and_kafka_runs_publish_identical_signals(kafka_config, kafka_topics, delivery: str) -> None:
    expected, bars = inprocess_signals()
    assert len(expected) > 300

    prefix = kafka_topics("md.bars", "signals.raw")
    alpha_bus = KafkaBus(kafka_config, topic_prefix=prefix, delivery=delivery)
    engine = ALPHA.engine(ALPHA_SETTINGS, alpha_bus.publisher("alpha"))
    alpha_bus.subscribe("alpha", engine.inputs, engine.on_message)
    stop = threading.Event()
    alpha = threading.Thread(target=alpha_bus.run_service, args=("alpha", stop))
    alpha.start()
    try:
        ingest_bus = KafkaBus(kafka_config, topic_prefix=prefix)
        sent = publish_source(INGEST.source(INGEST_SETTINGS), ingest_bus.publisher("ingest"), threading.Event())
        ingest_bus.flush()
        assert sent == bars
        codec = TopicCodec()
        msgs = read_topic(kafka_config, prefix + "signals.raw", expected=len(expected), timeout_s=60)
        got = [codec.decode("signals.raw", m.value())[1] for m in msgs]
    finally:
        stop.set()
        alpha.join(timeout=30)
    # Kafka keeps order per key (symbol), the in-process bus keeps global event-time order.
    assert sorted(got, key=_key) == sorted(expected, key=_key)
