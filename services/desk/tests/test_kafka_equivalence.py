"""The embedded run and the Kafka run of the same mandate and data produce the identical order stream."""

from __future__ import annotations

import uuid

import pytest
from quorum_common.bus.kafka_admin import delete_catalog_topics
from quorum_common.bus.topic_codec import TopicCodec
from quorum_common.schemas import default_catalog
from quorum_common.testing.kafka_helpers import read_topics
from quorum_desk.engine import run_embedded
from quorum_desk.kafka_run import run_over_kafka

pytestmark = pytest.mark.kafka
STREAMS = ("signals.decisions", "orders.proposed", "risk.decisions", "orders.approved", "exec.fills")


@pytest.mark.parametrize("delivery", ["at_least_once", "exactly_once"])
def test_embedded_and_kafka_runs_give_the_same_orders(kafka_config, desk_window, delivery: str) -> None:
    overrides = desk_window("2006-07-01", "2006-11-30")
    expected: dict[str, list[dict]] = {t: [] for t in STREAMS}
    embedded = run_embedded(overrides, extra_taps=[
        lambda m: expected[m.topic].append(m.value) if m.topic in expected else None])
    assert expected["orders.proposed"], "the window must produce orders"
    assert expected["exec.fills"], "and fills"

    prefix = f"eq{uuid.uuid4().hex[:8]}."
    try:
        # Solves started early in a worker (as `make up` and the chart run them) land as the embedded inline ones.
        early = {**overrides, "portfolio": {**overrides.get("portfolio", {}), "optimiser_worker": "early"}}
        run = run_over_kafka(kafka_config, prefix, early, delivery=delivery)
        assert run.published == embedded.recorder.counts["md.bars"] + embedded.recorder.counts["sys.clock"]
        got = read_topics(kafka_config, [prefix + t for t in STREAMS], idle_s=1.0,
                          expected=sum(len(v) for v in expected.values()))
    finally:
        delete_catalog_topics(kafka_config, default_catalog(), prefix)
    codec = TopicCodec()
    for topic in STREAMS:
        records = [codec.decode(topic, m.value())[1] for m in got[prefix + topic]]
        # Within one phase Kafka keeps order per partition only; the stream is the same set of
        # records with the same contents, and in event-time order per key.
        key = lambda r: (r["ts_event"], r["event_id"])  # noqa: E731
        assert sorted(records, key=key) == sorted(expected[topic], key=key), topic
