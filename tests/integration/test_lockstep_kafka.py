"""Lockstep mode: an engine fed by several topics and partitions sees the same sequence on Kafka as
in-process, because the source waits for the consumer groups to catch up before each clock tick."""

from __future__ import annotations

import threading

import pytest
from quorum_common.bus.inprocess import InProcessBus
from quorum_common.bus.kafka import KafkaBus
from quorum_common.bus.message import Message
from quorum_common.bus.quiescence import Quiescence
from quorum_common.engine import Source, envelope
from quorum_common.phases import clock_tick
from quorum_common.runtime.service import publish_source
from quorum_common.schemas import default_catalog
from quorum_common.testing.samples import sample_record

pytestmark = pytest.mark.kafka
CATALOG = default_catalog()
SYMBOLS = ["AAA", "BBB", "CCC", "DDD", "EEE", "FFF", "GGG"]
SIGNAL = sample_record(CATALOG.schema_for("signals.raw"))


class Bars(Source):
    def records(self):
        seq = 0
        for i in range(12):
            t = (i + 1) * 1_000_000
            for s in SYMBOLS:
                rec = sample_record(CATALOG.schema_for("md.bars"), seed=i)
                rec.update(envelope(t, "bar", s), symbol=s, close=100.0 + i)
                yield "md.bars", s, rec
            for kind in ("BAR_CLOSE", "VOTE"):
                seq += 1
                yield "sys.clock", "XNYS", clock_tick(kind, t, seq)


def wire(bus, seen: list) -> None:
    relay_pub = bus.publisher("relay")
    handled = [0]

    def relay(msg: Message) -> None:
        # The score depends on the order the relay saw the bars in: any reordering would show.
        handled[0] += 1
        relay_pub.publish("signals.raw", {**SIGNAL, **envelope(msg.ts_event, "sig", msg.key), "symbol": msg.key,
                                          "score": handled[0] % 7 / 10}, key=msg.key)

    def probe(msg: Message) -> None:
        seen.append((msg.topic, msg.key, msg.ts_event, msg.value.get("score")))

    bus.subscribe("relay", ["md.bars"], relay)
    bus.subscribe("probe", ["md.bars", "signals.raw", "sys.clock"], probe)


def test_lockstep_sequence_is_identical_in_process_and_over_kafka(kafka_config, kafka_topics) -> None:
    expected: list = []
    inproc = InProcessBus(lockstep=True)
    wire(inproc, expected)
    inproc.add_source("ingest", Bars().records())
    inproc.run()
    assert len(expected) == 12 * (2 * len(SYMBOLS) + 2)

    prefix = kafka_topics("md.bars", "signals.raw", "sys.clock")
    got: list = []
    bus = KafkaBus(kafka_config, topic_prefix=prefix, delivery="at_least_once", lockstep=True)
    wire(bus, got)
    stop = threading.Event()
    threads = [threading.Thread(target=bus.run_service, args=(s, stop)) for s in ("relay", "probe")]
    for t in threads:
        t.start()
    try:
        for s in ("relay", "probe"):
            assert bus.loop(s).ready.wait(30)
        groups = {prefix + "relay": [prefix + "md.bars", prefix + "sys.clock"],
                  prefix + "probe": [prefix + t for t in ("md.bars", "signals.raw", "sys.clock")]}
        quiet = Quiescence(kafka_config, groups, timeout_s=30)
        source_bus = KafkaBus(kafka_config, topic_prefix=prefix, delivery="at_least_once", lockstep=True)
        pub = source_bus.publisher("ingest")

        def barrier() -> None:
            source_bus.flush()
            quiet.wait()

        publish_source(Bars(), pub, threading.Event(), barrier=barrier)
        barrier()
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert got == expected
