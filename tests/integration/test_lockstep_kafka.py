"""Lockstep mode: an engine fed by several topics and partitions sees the same sequence on Kafka as
in-process, because each tick waits for the reports on the previous one of every consumer that may have
published in it, and carries the offsets its consumers must have read (bus/phase_barrier.py)."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from contextlib import contextmanager

import pytest
from confluent_kafka import Consumer, TopicPartition
from prometheus_client import CollectorRegistry
from quorum_common.bus.inprocess import InProcessBus
from quorum_common.bus.kafka import KafkaBus, KafkaPublisher
from quorum_common.bus.message import Message
from quorum_common.bus.phase_barrier import PROGRESS_TOPIC, WAIT_HEADER, ReportRule
from quorum_common.bus.standby import stand_by
from quorum_common.bus.topic_codec import TopicCodec
from quorum_common.engine import Source, envelope
from quorum_common.phases import clock_tick
from quorum_common.runtime.service import publish_source
from quorum_common.schemas import default_catalog
from quorum_common.testing.kafka_helpers import read_topic
from quorum_common.testing.samples import sample_record
from quorum_ingest.app import NoData

pytestmark = pytest.mark.kafka
CATALOG = default_catalog()
CODEC = TopicCodec(CATALOG)
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


@contextmanager
def running(bus: KafkaBus, services: list[str]):
    """The consumer loops of ``services`` on ``bus``, each in a thread, ready (partitions assigned) inside."""
    stop = threading.Event()
    threads = [threading.Thread(target=bus.run_service, args=(s, stop)) for s in services]
    for t in threads:
        t.start()
    try:
        for s in services:
            assert bus.loop(s).ready.wait(30)
        yield
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)


def run_both_ways(kafka_config: dict, prefix: str, delivery: str, wire_services, source: type[Source],
                  watch_source: Callable[[KafkaPublisher], None] | None = None
                  ) -> tuple[list, list, dict, CollectorRegistry]:
    """The sequence the engines ``wire_services(bus, seen)`` wires (relay and probe) see in-process and over Kafka
    (as soon as the source is through: its end waits for the consumers), the source barrier's rules and the
    source's metrics. ``watch_source`` is given the source's publisher before it publishes."""
    expected: list = []
    inproc = InProcessBus(lockstep=True)
    wire_services(inproc, expected)
    inproc.add_source("ingest", source().records())
    inproc.run()

    got: list = []
    bus = KafkaBus(kafka_config, topic_prefix=prefix, delivery=delivery, lockstep=True)
    wire_services(bus, got)
    with running(bus, ["relay", "probe"]):
        source_bus = KafkaBus(kafka_config, topic_prefix=prefix, delivery=delivery, lockstep=True)
        with source_bus.phase_barrier("ingest", ["relay", "probe"], timeout_s=30) as barrier:
            if watch_source is not None:
                watch_source(source_bus.publisher("ingest"))
            publish_source(source(), source_bus.publisher("ingest"), threading.Event(), barrier=barrier)
            return expected, list(got), dict(barrier.rules), source_bus.metrics_for("ingest").registry


@pytest.mark.parametrize("delivery", ["at_least_once", "exactly_once"])
def test_lockstep_sequence_is_identical_in_process_and_over_kafka(kafka_config, kafka_topics, delivery: str) -> None:
    prefix = kafka_topics("md.bars", "signals.raw", "sys.clock", "sys.progress")
    expected, got, _rules, _metrics = run_both_ways(kafka_config, prefix, delivery, wire, Bars)
    assert len(expected) == 12 * (2 * len(SYMBOLS) + 2)
    assert got == expected


def test_a_tick_waits_for_the_records_it_is_stamped_after_and_is_reported(kafka_config, kafka_topics) -> None:
    """A consumer handles a tick only once it has read up to the tick's ``x-after`` offsets, then reports it."""
    prefix = kafka_topics("md.bars", "sys.clock", "sys.progress")
    seen: list = []
    bus = KafkaBus(kafka_config, topic_prefix=prefix, delivery="at_least_once", lockstep=True)
    bus.subscribe("probe", ["md.bars", "sys.clock"], lambda msg: seen.append((msg.topic, msg.ts_event)))
    stop = threading.Event()
    thread = threading.Thread(target=bus.run_service, args=("probe", stop))
    thread.start()
    source_bus = KafkaBus(kafka_config, topic_prefix=prefix, delivery="at_least_once", lockstep=True)
    pub = source_bus.publisher("ingest")
    late = source_bus.publisher("late")  # publishes the bar only after the tick is out
    try:
        assert bus.loop("probe").ready.wait(30)
        bar = sample_record(CATALOG.schema_for("md.bars"), seed=3)
        bar.update(envelope(1_000_000, "bar", "AAA"), symbol="AAA")
        partition = 2
        pub.after = {("md.bars", partition): 1}  # the tick follows the first record of md.bars[2]
        tick = clock_tick("BAR_CLOSE", 1_000_000, 1)
        pub.publish("sys.clock", tick, key="XNYS")
        pub.flush()
        time.sleep(1.5)
        assert seen == [], "the tick was handled before the record it must follow was read"
        late.producer.produce(prefix + "md.bars", CODEC.encode("md.bars", bar), key=b"AAA", partition=partition,
                              headers=[("x-phase", b"0")])
        late.flush()
        deadline = time.monotonic() + 20
        while len(seen) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert seen == [("md.bars", 1_000_000), ("sys.clock", tick["ts_event"])]
        reports = Consumer({**kafka_config, "group.id": f"{prefix}check", "auto.offset.reset": "earliest"})
        reports.assign([TopicPartition(prefix + PROGRESS_TOPIC, 0, 0)])
        m = reports.poll(20)
        reports.close()
        assert m is not None and m.error() is None
        report = CODEC.decode(PROGRESS_TOPIC, m.value())[1]
        assert (report["service"], report["tick_id"]) == ("probe", tick["event_id"])
    finally:
        stop.set()
        thread.join(timeout=30)


def test_a_tick_with_a_malformed_after_header_goes_to_the_dead_letter_topic(kafka_config, kafka_topics) -> None:
    prefix = kafka_topics("md.bars", "sys.clock", "sys.progress")
    seen: list = []
    bus = KafkaBus(kafka_config, topic_prefix=prefix, delivery="at_least_once", lockstep=True)
    bus.subscribe("probe", ["md.bars", "sys.clock"], lambda msg: seen.append(msg.topic))
    stop = threading.Event()
    thread = threading.Thread(target=bus.run_service, args=("probe", stop))
    thread.start()
    try:
        assert bus.loop("probe").ready.wait(30)
        source = KafkaBus(kafka_config, topic_prefix=prefix, delivery="at_least_once").publisher("ingest")
        tick = clock_tick("BAR_CLOSE", 1_000_000, 1)
        source.producer.produce(prefix + "sys.clock", CODEC.encode("sys.clock", tick), key=b"XNYS",
                                headers=[("x-phase", b"0"), ("x-after", b"not json")])
        source.flush()
        letters = Consumer({**kafka_config, "group.id": f"{prefix}dlq", "auto.offset.reset": "earliest"})
        letters.assign([TopicPartition(prefix + "dlq.sys.clock", 0, 0)])
        m = letters.poll(20)
        letters.close()
        assert m is not None and m.error() is None, "the tick never reached dlq.sys.clock"
        headers = {k: v.decode() for k, v in m.headers()}
        assert "x-after" in headers["dlq.error"] and headers["dlq.service"] == "probe"
        assert seen == [], "a tick whose offsets cannot be read must not be handled"
    finally:
        stop.set()
        thread.join(timeout=30)


def _run_probe(kafka_config: dict, prefix: str, delivery: str, seen: list) -> tuple[KafkaBus, threading.Event,
                                                                                      threading.Thread]:
    bus = KafkaBus(kafka_config, topic_prefix=prefix, delivery=delivery, lockstep=True, commit_interval_ms=0)
    bus.subscribe("probe", ["md.bars", "sys.clock"], lambda msg: seen.append((msg.topic, msg.key)))
    stop = threading.Event()
    thread = threading.Thread(target=bus.run_service, args=("probe", stop))
    thread.start()
    assert bus.loop("probe").ready.wait(30)
    return bus, stop, thread


@pytest.mark.parametrize("delivery", ["at_least_once", "exactly_once"])
def test_records_held_by_a_stopped_consumer_are_handled_by_its_successor(kafka_config, kafka_topics,
                                                                           delivery: str) -> None:
    """A lockstep consumer stopped mid-phase (a rolling restart) commits none of the records it holds."""
    prefix = kafka_topics("md.bars", "sys.clock", "sys.progress")
    source_bus = KafkaBus(kafka_config, topic_prefix=prefix, delivery=delivery, lockstep=True)
    source = source_bus.publisher("ingest")
    first: list = []
    bus, stop, thread = _run_probe(kafka_config, prefix, delivery, first)
    try:
        for s in SYMBOLS:
            bar = sample_record(CATALOG.schema_for("md.bars"), seed=1)
            bar.update(envelope(1_000_000, "bar", s), symbol=s)
            source.publish("md.bars", bar, key=s)
        source.flush()
        deadline = time.monotonic() + 20
        while len(bus.loop("probe").held) < len(SYMBOLS) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(bus.loop("probe").held) == len(SYMBOLS), "the first consumer never read the bars"
        time.sleep(0.3)  # past commit_interval_ms: an eager commit would have happened by now
    finally:
        stop.set()
        thread.join(timeout=30)
    assert first == [], "no tick was sent: nothing may be handled yet"

    second: list = []
    bus, stop, thread = _run_probe(kafka_config, prefix, delivery, second)
    try:
        with source_bus.phase_barrier("ingest", ["probe"], timeout_s=30) as barrier:
            barrier()
            source.publish("sys.clock", clock_tick("BAR_CLOSE", 1_000_000, 1), key="XNYS")
            barrier()  # returns once the successor reported the tick
    finally:
        stop.set()
        thread.join(timeout=30)
    assert sorted(second[:-1]) == [("md.bars", s) for s in SYMBOLS], "the successor lost the held bars"
    assert second[-1] == ("sys.clock", "XNYS")


class BarsAndDayEnds(Source):
    """Bars, then a BAR_CLOSE, a VOTE and a DAY_END tick per bar time."""

    def __init__(self, times: int = 6) -> None:
        self.times = times

    def records(self):
        seq = 0
        for i in range(self.times):
            t = (i + 1) * 1_000_000
            for s in SYMBOLS[:3]:
                rec = sample_record(CATALOG.schema_for("md.bars"), seed=i)
                rec.update(envelope(t, "bar", s), symbol=s, close=100.0 + i)
                yield "md.bars", s, rec
            for kind in ("BAR_CLOSE", "VOTE", "DAY_END"):
                seq += 1
                yield "sys.clock", "XNYS", clock_tick(kind, t, seq)


def wire_quiet(bus, seen: list) -> None:
    """A relay turning bars into signals (no clock) and a probe of signals that publishes nothing (acts_on ())."""
    relay_pub = bus.publisher("relay")

    def relay(msg: Message) -> None:
        relay_pub.publish("signals.raw", {**SIGNAL, **envelope(msg.ts_event, "sig", msg.key), "symbol": msg.key},
                          key=msg.key)

    def probe(msg: Message) -> None:
        if msg.topic == "sys.clock" and msg.ts_event == clock_tick("DAY_END", 6_000_000, 0)["ts_event"]:
            time.sleep(0.5)  # slow on the last tick, which the source waits for nobody's report on
        seen.append((msg.topic, msg.key, msg.ts_event))

    bus.subscribe("relay", ["md.bars"], relay)
    bus.subscribe("probe", ["signals.raw", "sys.clock"], probe, acts_on=())


def ticks_and_reports(kafka_config: dict, prefix: str) -> tuple[dict[str, tuple[str, str]], list[dict]]:
    """The ticks of a run (event id -> kind and x-wait header, in order) and its phase reports, from the broker."""
    ticks = {}
    for m in read_topic(kafka_config, prefix + "sys.clock", idle_s=0.5):
        tick = CODEC.decode("sys.clock", m.value())[1]
        ticks[tick["event_id"]] = (tick["kind"], dict(m.headers())[WAIT_HEADER].decode())
    reports = [CODEC.decode(PROGRESS_TOPIC, m.value())[1]
               for m in read_topic(kafka_config, prefix + PROGRESS_TOPIC, idle_s=0.5)]
    return ticks, reports


@pytest.mark.parametrize("delivery", ["at_least_once", "exactly_once"])
def test_the_source_waits_only_for_consumers_that_may_publish_and_only_they_report(kafka_config, kafka_topics,
                                                                                  delivery: str) -> None:
    """A tick names in x-wait the consumers that may publish after it (records released to them, or a kind they
    act on; every consumer until its first report states its rule); only they report, the sequence every engine
    sees stays the in-process one, and the source's end waits until every consumer handled the last tick."""
    prefix = kafka_topics("md.bars", "signals.raw", "sys.clock", "sys.progress")
    expected, got, rules, metrics = run_both_ways(kafka_config, prefix, delivery, wire_quiet, BarsAndDayEnds)
    assert got == expected, "the source's end returned before the consumers were done, or the order differs"
    assert rules == {"relay": ReportRule(frozenset({"md.bars"}), frozenset()),
                     "probe": ReportRule(frozenset({"signals.raw"}), frozenset())}

    ticks, reports = ticks_and_reports(kafka_config, prefix)
    kinds = [kind for kind, _wait in ticks.values()]
    assert kinds == ["BAR_CLOSE", "VOTE", "DAY_END"] * 6
    waits = [wait for _kind, wait in ticks.values()]
    # The first tick waits for both (no rule known yet); then bars wake the relay, its signals the probe, and a
    # DAY_END releases nothing to anyone.
    assert waits == ["probe,relay", "probe", ""] + ["relay", "probe", ""] * 5
    by_kind = Counter((r["service"], ticks[r["tick_id"]][0]) for r in reports)
    assert by_kind == {("relay", "BAR_CLOSE"): 6, ("probe", "BAR_CLOSE"): 1, ("probe", "VOTE"): 6}
    # The source's metrics: every tick's phase time, by kind (the last one's at the end), and the reports it got.
    for kind in ("BAR_CLOSE", "VOTE", "DAY_END"):
        assert metrics.get_sample_value("quorum_ingest_phase_duration_seconds_count", {"kind": kind}) == 6
    assert {s: metrics.get_sample_value("quorum_ingest_phase_reports_total", {"service": s})
            for s in ("relay", "probe")} == {"relay": 6, "probe": 7}


def test_a_tick_that_waits_for_nobody_is_sent_with_the_next_records_not_waited_for(kafka_config, kafka_topics) -> None:
    """The source waits for the acknowledgement of what it published (a flush) only where the next tick needs it: its
    own records' offsets (bars) or a tick someone reports on. A DAY_END that waits for nobody lingers and leaves with
    the next bar time's bars, one flush instead of two, and every engine still sees the in-process sequence."""
    events: list[str] = []

    def watch(publisher: KafkaPublisher) -> None:
        publish, flush = publisher.publish, publisher.flush

        def logged_publish(topic: str, record: dict, **kwargs) -> None:
            events.append(record["kind"] if topic == "sys.clock" else "bar")
            publish(topic, record, **kwargs)

        def logged_flush(*args) -> None:
            events.append("flush")
            flush(*args)

        publisher.publish, publisher.flush = logged_publish, logged_flush

    prefix = kafka_topics("md.bars", "signals.raw", "sys.clock", "sys.progress")
    expected, got, _rules, _metrics = run_both_ways(kafka_config, prefix, "at_least_once", wire_quiet, BarsAndDayEnds,
                                                    watch)
    assert got == expected
    bar_time = ["bar"] * 3 + ["flush", "BAR_CLOSE", "flush", "VOTE", "flush", "DAY_END"]
    # Every tick but DAY_END waits for someone (test above); the end flushes once more and waits for the consumers.
    assert events == bar_time * 6 + ["flush"]


def test_outputs_of_a_record_from_outside_the_lockstep_are_reported_and_reach_their_consumers(
        kafka_config, kafka_topics, caplog) -> None:
    """An admin's command (published outside the lockstep, no x-phase) is released to the risk service at a tick the
    source does not wait for it on; risk's reaction is reported anyway, logged at INFO, and reaches its consumer."""
    prefix = kafka_topics("md.bars", "control.commands", "control.state", "sys.clock", "sys.progress")
    admin = KafkaBus(kafka_config, topic_prefix=prefix).publisher("admin")  # not lockstep: no x-phase
    command = {**sample_record(CATALOG.schema_for("control.commands")), **envelope(2_000_000, "cmd", "halt")}
    state = sample_record(CATALOG.schema_for("control.state"))

    class WithCommand(BarsAndDayEnds):
        def records(self):
            for item in super().records():
                if item[0] == "md.bars" and item[2]["ts_event"] == 3_000_000 and item[1] == SYMBOLS[0]:
                    admin.publish("control.commands", command, key="desk")  # while the desk runs bar time 3
                    admin.flush()
                yield item

    bus = KafkaBus(kafka_config, topic_prefix=prefix, lockstep=True)
    risk_pub, seen = bus.publisher("risk"), []
    bus.subscribe("risk", ["control.commands"], lambda msg: risk_pub.publish(
        "control.state", {**state, **envelope(msg.ts_event, "state", msg.value["event_id"])}, key="desk"))
    bus.subscribe("probe", ["md.bars", "control.state", "sys.clock"], lambda msg: seen.append(msg.topic), acts_on=())
    with running(bus, ["risk", "probe"]):
        source_bus = KafkaBus(kafka_config, topic_prefix=prefix, lockstep=True)
        with caplog.at_level(logging.INFO, logger="quorum_common.bus.kafka"), \
                source_bus.phase_barrier("ingest", ["risk", "probe"], timeout_s=30) as barrier:
            publish_source(WithCommand(), source_bus.publisher("ingest"), threading.Event(), barrier=barrier)
            got = list(seen)
    assert got.count("control.state") == 1, "risk's reaction to the admin's command never reached its consumer"
    ticks, reports = ticks_and_reports(kafka_config, prefix)
    unwaited = [r for r in reports if r["service"] == "risk" and "risk" not in ticks[r["tick_id"]][1].split(",")]
    assert len(unwaited) == 1 and unwaited[0]["offsets"], "risk did not report the outputs nobody waited for"
    assert any("outside the lockstep" in r.getMessage() and r.levelno == logging.INFO for r in caplog.records)


@pytest.mark.parametrize("delivery", ["at_least_once", "exactly_once"])
def test_every_tick_of_one_fetched_batch_is_handled_in_order(kafka_config, kafka_topics, delivery: str) -> None:
    """A tick no consumer reports on is followed at once by the next, so one fetch can bring several ticks:
    each is handled, in order, with the records of its phase (a consumer once kept only the last tick of a
    batch, silently dropping the others, and committed past them)."""
    prefix = kafka_topics("md.bars", "sys.clock", "sys.progress")
    source_bus = KafkaBus(kafka_config, topic_prefix=prefix, delivery=delivery, lockstep=True)
    pub = source_bus.publisher("ingest")
    expected = []
    for i in range(4):  # everything is in the topics before the consumer starts: its first fetch gets it all
        t = (i + 1) * 1_000_000
        bar = sample_record(CATALOG.schema_for("md.bars"), seed=i)
        bar.update(envelope(t, "bar", "AAA"), symbol="AAA")
        pub.publish("md.bars", bar, key="AAA")
        pub.flush()
        pub.after = dict(pub.published_offsets)  # the ticks follow the bar (the phase barrier's stamp)
        expected.append(("md.bars", t))
        for seq, kind in enumerate(("BAR_CLOSE", "VOTE", "DAY_END"), start=3 * i + 1):
            tick = clock_tick(kind, t, seq)
            pub.publish("sys.clock", tick, key="XNYS")
            expected.append(("sys.clock", tick["ts_event"]))
    pub.flush()
    seen: list = []
    bus = KafkaBus(kafka_config, topic_prefix=prefix, delivery=delivery, lockstep=True)
    bus.subscribe("probe", ["md.bars", "sys.clock"], lambda msg: seen.append((msg.topic, msg.ts_event)))
    with running(bus, ["probe"]):
        deadline = time.monotonic() + 30
        while len(seen) < len(expected) and time.monotonic() < deadline:
            time.sleep(0.05)
    assert seen == expected


@pytest.mark.parametrize("delivery", ["at_least_once", "exactly_once"])
def test_a_source_standing_by_after_its_replay_releases_the_commands_sent_later(kafka_config, kafka_topics, caplog,
                                                                                delivery: str) -> None:
    """Once the replay's last tick is out, no tick would release an admin's command. A source that stands by ticks for
    each command it sees: a HEARTBEAT releases the command to risk, the next one risk's new state to its reader, then
    it stops ticking. A command written between the replay's end and the standby's start is released too."""
    prefix = kafka_topics("md.bars", "control.commands", "control.state", "sys.clock", "sys.progress")
    admin_bus = KafkaBus(kafka_config, topic_prefix=prefix)
    admin = admin_bus.publisher("admin")  # not lockstep: no x-phase
    state = sample_record(CATALOG.schema_for("control.state"))

    def command(name: str) -> None:
        admin.publish("control.commands", {**sample_record(CATALOG.schema_for("control.commands")),
                                           **envelope(9_000_000, "cmd", name)}, key="desk")
        admin.flush()

    bus = KafkaBus(kafka_config, topic_prefix=prefix, delivery=delivery, lockstep=True)
    risk_pub, handled, seen = bus.publisher("risk"), [], []

    def risk(msg: Message) -> None:
        handled.append(msg.value["event_id"])
        risk_pub.publish("control.state", {**state, **envelope(msg.ts_event, "state", msg.value["event_id"])},
                         key="desk")

    bus.subscribe("risk", ["control.commands"], risk)
    bus.subscribe("probe", ["md.bars", "control.state", "sys.clock"], lambda msg: seen.append(msg), acts_on=())

    def states() -> int:
        return sum(m.topic == "control.state" for m in list(seen))

    def wait_for(n: int) -> None:
        deadline = time.monotonic() + 30
        while states() < n:
            assert time.monotonic() < deadline, f"{states()} of {n} states reached the probe: {handled}"
            time.sleep(0.05)

    def stand_by_after(source: Source, before: Callable[[], None] = lambda: None) -> Callable[[], int | None]:
        """A fresh lockstep source publishes ``source``, ``before()`` runs, then it stands by in a thread; returns what
        stops it and returns the heartbeats it published."""
        source_bus = KafkaBus(kafka_config, topic_prefix=prefix, delivery=delivery, lockstep=True)
        barrier = source_bus.phase_barrier("ingest", ["risk", "probe"], timeout_s=30)
        publisher, stop, beats = source_bus.publisher("ingest"), threading.Event(), []
        publish_source(source, publisher, stop, barrier=barrier)
        before()
        thread = threading.Thread(target=lambda: beats.append(stand_by(barrier, publisher, stop, poll_s=0.1)))
        thread.start()

        def end() -> int | None:
            stop.set()
            thread.join(timeout=30)
            barrier.close()
            source_bus.close()
            return beats[0] if beats else None

        return end

    caplog.set_level(logging.INFO, logger="quorum_common.bus.standby")
    try:
        with running(bus, ["risk", "probe"]):
            end = stand_by_after(BarsAndDayEnds(), lambda: command("before-standby"))  # nothing would release it
            try:
                wait_for(1)
                command("during-standby")
                wait_for(2)
                time.sleep(1.0)  # no more ticks come: the desk is quiet
            finally:
                beats = end()
            # A source that never published (standby mode, `up --no-replay`) follows the last recorded tick, and does
            # not release again what the consumers have handled (their committed offsets)
            end = stand_by_after(NoData())
            try:
                time.sleep(0.5)
                command("fresh-standby")
                wait_for(3)
                time.sleep(1.0)
            finally:
                fresh = end()
    finally:
        admin_bus.close()
    assert handled == [envelope(9_000_000, "cmd", n)["event_id"] for n in ("before-standby", "during-standby",
                                                                           "fresh-standby")]
    assert states() == 3 and (beats, fresh) == (4, 2)
    released = [(r.records, r.ticks) for r in caplog.records if r.getMessage() == "commands released"]
    assert released == [(1, 2)] * 3, "a standby read again commands the desk had handled"
    ticks, _reports = ticks_and_reports(kafka_config, prefix)
    assert [kind for kind, _wait in ticks.values()][-7:] == ["DAY_END"] + ["HEARTBEAT"] * 6
    # The fresh source knows no consumer's rule yet: its first heartbeat waits for both
    assert [wait for _kind, wait in ticks.values()][-6:] == ["risk", "probe", "risk", "probe", "probe,risk", "probe"]
    clock = [m for m in seen if m.topic == "sys.clock"]
    assert [m.ts_event - clock[-7].ts_event for m in clock[-7:]] == list(range(7))
    assert [m.value["sequence"] - clock[-7].value["sequence"] for m in clock[-7:]] == list(range(7))
