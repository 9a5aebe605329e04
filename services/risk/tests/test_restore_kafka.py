"""Restart over Kafka: a new risk engine restores its state from the compacted topics on the real broker."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Producer
from quorum_common.bus.history import read_to_end
from quorum_common.bus.kafka import KafkaBus
from quorum_common.bus.topic_codec import TopicCodec
from quorum_risk import testing as t
from quorum_risk.app import RESTORED_TOPICS, restored_engine
from quorum_risk.config import RiskSettings
from quorum_risk.testing import Harness


def on_the_broker(kafka_config: dict, prefix: str, h: Harness) -> None:
    """What the harness's engine published on the restored topics, and its inputs there, written to the broker."""
    bus = KafkaBus(kafka_config, topic_prefix=prefix)
    pub = bus.publisher("test")
    for topic in RESTORED_TOPICS:
        for rec in h.seen[topic]:
            pub.publish(topic, rec, key="k")
    bus.flush()


@pytest.mark.kafka
def test_restarted_engine_resumes_from_control_state_on_the_broker(kafka_config: dict, kafka_topics) -> None:
    prefix = kafka_topics(*RESTORED_TOPICS)
    before = t.snapshot({"JPM": (10.0, 100.0)})
    h = Harness().send("mandate.compiled", t.mandate()).send("portfolio.snapshots", before)
    h.send("control.commands", t.command("TIGHTEN_LIMITS", limits={"max_position_weight": 0.5}))
    h.send("control.commands", t.command("HALT_TRADING", ts=t.T0 + 3))
    on_the_broker(kafka_config, prefix, h)
    settings = RiskSettings(kafka_bootstrap_servers=kafka_config["bootstrap.servers"], topic_prefix=prefix)
    engine = restored_engine(settings, Harness().bus.publisher("risk"))
    assert (engine.state, engine.sequence) == ("HALTED", h.engine.sequence)
    assert engine.limits == h.engine.limits and engine.book.positions == {"JPM": (10.0, 100.0)}


@pytest.mark.kafka
def test_restore_reaches_the_end_of_a_topic_written_in_a_transaction(kafka_config: dict, kafka_topics) -> None:
    """A committed transaction ends the log with a commit marker, which is never delivered as a record."""
    prefix = kafka_topics("mandate.compiled")
    codec = TopicCodec()
    producer = Producer({**kafka_config, "transactional.id": f"{prefix}restore-test"})
    producer.init_transactions(30)
    producer.begin_transaction()
    producer.produce(prefix + "mandate.compiled", codec.encode("mandate.compiled", t.mandate()), key=b"m1")
    producer.commit_transaction(30)
    got = read_to_end(kafka_config, codec, ["mandate.compiled"], prefix, timeout_s=15)
    assert [m.value["mandate_id"] for m in got] == ["m1"]


@pytest.mark.kafka
def test_restore_skips_the_open_transaction_of_a_killed_producer(kafka_config: dict, kafka_topics) -> None:
    """A producer killed inside a transaction leaves its records uncommitted until the broker aborts them (a
    transaction timeout later): the restore ends where the committed records end instead of waiting for them."""
    prefix = kafka_topics(*RESTORED_TOPICS)
    codec = TopicCodec()
    h = Harness().send("mandate.compiled", t.mandate()).send("portfolio.snapshots", t.snapshot({"JPM": (10.0, 100.0)}))
    h.send("control.commands", t.command("HALT_TRADING", ts=t.T0 + 3))
    on_the_broker(kafka_config, prefix, h)
    killed = Producer({**kafka_config, "transactional.id": f"{prefix}portfolio-0", "transaction.timeout.ms": 600_000})
    killed.init_transactions(30)
    killed.begin_transaction()
    killed.produce(prefix + "portfolio.snapshots", codec.encode(
        "portfolio.snapshots", t.snapshot({"JPM": (99.0, 100.0)}, ts=t.T0 + 5, sequence=2)), key=b"k")
    assert killed.flush(30) == 0  # written to the log, never committed: the producer is "killed" here
    settings = RiskSettings(kafka_bootstrap_servers=kafka_config["bootstrap.servers"], topic_prefix=prefix)
    started = time.monotonic()
    engine = restored_engine(settings, Harness().bus.publisher("risk"))
    assert time.monotonic() - started < 10
    assert engine.state == "HALTED" and engine.book.positions == {"JPM": (10.0, 100.0)}
