"""The order in which a restarted lockstep consumer hands its history to its engine (bus/rebuild.py) is the order
in which it handled those records the first time."""

from __future__ import annotations

import logging
import random
import re
import time
import uuid
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from quorum_common.bus.history import HistoryTimeout
from quorum_common.bus.inprocess import InProcessBus
from quorum_common.bus.kafka import KafkaBus
from quorum_common.bus.kafka_admin import consumer_group
from quorum_common.bus.lockstep import CLOCK_TOPIC, PHASE_HEADER, phase_of
from quorum_common.bus.message import Message
from quorum_common.bus.phase_barrier import PROGRESS_TOPIC
from quorum_common.bus.rebuild import DAY_NS, HistoryRecord, HistoryReplay, Sequencer, checkpoint_record
from quorum_common.bus.topic_codec import TopicCodec
from quorum_common.engine import Engine, envelope
from quorum_common.engine_state import seal
from quorum_common.phases import clock_tick
from quorum_common.schemas import default_catalog
from quorum_common.testing.kafka_helpers import read_topic
from quorum_common.testing.samples import sample_record

CATALOG = default_catalog()
KEY = b"the checkpoint key of this desk"
RANK = {t.name: i for i, t in enumerate(CATALOG)}
SIGNAL = sample_record(CATALOG.schema_for("signals.raw"))


def bars_and_ticks(times: int, symbols: list[str]):
    seq = 0
    for i in range(times):
        t = (i + 1) * 1000
        for s in symbols:
            rec = sample_record(CATALOG.schema_for("md.bars"), seed=i)
            rec.update(envelope(t, "bar", s), symbol=s)
            yield "md.bars", s, rec
        for kind in ("BAR_CLOSE", "VOTE", "REBALANCE"):
            seq += 1
            yield "sys.clock", "XNYS", clock_tick(kind, t, seq)


def live_run(times: int = 6, symbols: tuple[str, ...] = ("C", "A", "B")) -> list[Message]:
    """What a lockstep consumer of bars, signals (a relay's, one tick behind the bars) and ticks is handed."""
    bus = InProcessBus(lockstep=True)
    relay = bus.publisher("relay")
    bus.subscribe("relay", ["md.bars"], lambda m: relay.publish(
        "signals.raw", {**SIGNAL, **envelope(m.ts_event, "sig", m.key), "symbol": m.key}, key=m.key))
    seen: list[Message] = []
    bus.subscribe("probe", ["md.bars", "signals.raw", CLOCK_TOPIC], seen.append)
    bus.add_source("ingest", bars_and_ticks(times, list(symbols)))
    bus.run()
    return seen


def record(msg: Message, timestamp_ms: int) -> HistoryRecord:
    """``msg`` as read back, with the phase of its header (None without one)."""
    return HistoryRecord(msg, phase_of(msg.headers) if PHASE_HEADER in msg.headers else None, timestamp_ms)


def as_history(seen: list[Message], seed: int) -> list[HistoryRecord]:
    """The records as read back from the broker: offsets per topic, tick timestamps rising, in a shuffled order."""
    offsets: dict[str, int] = {}
    out = []
    for i, m in enumerate(seen):
        offset = offsets[m.topic] = offsets.get(m.topic, -1) + 1
        out.append(record(Message(m.topic, m.key, m.value, m.schema, m.headers, 0, offset), 10 * i))
    random.Random(seed).shuffle(out)
    return out


def sequencer(history: list[HistoryRecord], with_ticks: bool = True) -> Sequencer:
    """A sequencer of the ticks of ``history`` (in offset order), nothing added yet."""
    ticks = sorted((r for r in history if r.raw.topic == CLOCK_TOPIC), key=lambda r: r.raw.offset)
    return Sequencer([t.raw.ts_event for t in ticks], [t.timestamp_ms for t in ticks], RANK, lambda m: m,
                     iter([t.raw for t in ticks]) if with_ticks else None)


def replay_order(history: list[HistoryRecord], with_ticks: bool = True) -> tuple[list[Message], int]:
    """Every record of ``history`` placed first, then all handed over: the order and how many came after every tick."""
    seq = sequencer(history, with_ticks)
    for r in history:
        if r.raw.topic != CLOCK_TOPIC:
            seq.add(r)
    ordered = list(seq.finish())
    return ordered, seq.late


def ids(msgs: list[Message]) -> list[tuple[str, str | None, str]]:
    return [(m.topic, m.key, m.value["event_id"]) for m in msgs]


def test_the_rebuild_hands_the_records_over_in_the_order_the_live_consumer_handled_them() -> None:
    seen = live_run()
    assert {m.topic for m in seen} == {"md.bars", "signals.raw", CLOCK_TOPIC}
    for seed in range(5):
        ordered, late = replay_order(as_history(seen, seed))
        assert ids(ordered) == ids(seen)
        assert late == 0


def test_an_engine_without_the_clock_gets_the_same_records_without_the_ticks() -> None:
    seen = live_run()
    ordered, _late = replay_order(as_history(seen, 1), with_ticks=False)
    assert ids(ordered) == ids([m for m in seen if m.topic != CLOCK_TOPIC])


def test_a_record_from_outside_the_lockstep_is_released_at_the_first_tick_not_older_than_it() -> None:
    seen = live_run()
    history = as_history(seen, 2)
    ticks = sorted((r for r in history if r.raw.topic == CLOCK_TOPIC), key=lambda r: r.raw.offset)
    command = sample_record(CATALOG.schema_for("control.commands"))

    def outside(event_id: str, timestamp_ms: int) -> HistoryRecord:
        # An operator's command: no x-phase header, its event time the wall clock's (far after the replayed data).
        value = {**command, "event_id": event_id, "ts_event": 2 * 10**18}
        return record(Message("control.commands", "desk", value, "cmd", {}, 0, 0), timestamp_ms)

    ordered, late = replay_order([*history, outside("cmd-1", ticks[4].timestamp_ms - 5),
                                  outside("cmd-2", ticks[-1].timestamp_ms + 5)])
    where = [m.value["event_id"] for m in ordered].index("cmd-1")
    assert ordered[where + 1].value["event_id"] == ticks[4].raw.value["event_id"], "released just before tick 4"
    assert ordered[-1].value["event_id"] == "cmd-2" and late == 1, "after the last tick: handed over at the end"
    assert ids([m for m in ordered if m.topic != "control.commands"]) == ids(seen)


def test_records_handed_over_while_they_are_read_come_in_the_same_order_and_few_wait() -> None:
    # Read as the rebuild reads: each topic in offset order, the topics interleaved at random, the ticks before each
    # read released once every topic was read a margin past them.
    seen = live_run()
    history = as_history(seen, 3)
    margin = 2
    for seed in range(5):
        seq = sequencer(history)
        queues = {t: sorted((r for r in history if r.raw.topic == t), key=lambda r: r.raw.offset)
                  for t in ("md.bars", "signals.raw")}
        frontier = dict.fromkeys(queues, -1)
        rng, out, most_held = random.Random(seed), [], 0
        while queues:
            topic = rng.choice(sorted(queues))
            frontier[topic] = max(frontier[topic], seq.add(queues[topic].pop(0)))
            if not queues[topic]:
                del queues[topic]
            most_held = max(most_held, seq.held)
            out += seq.release(min((frontier[t] for t in queues), default=len(seq)) - margin)
        out += seq.finish()
        assert ids(out) == ids(seen)
        assert seq.misplaced == 0
        assert most_held < len(seen) // 2, f"{most_held} records waited at once: the history was held, not streamed"


def test_ticks_that_go_back_in_event_time_are_refused_naming_where() -> None:
    with pytest.raises(ValueError, match=re.escape("at tick 2 (1002 then 1001)")):
        Sequencer([1001, 1002, 1001], [1, 2, 3], RANK, lambda m: m)


def test_a_record_read_after_its_tick_was_handed_over_comes_before_the_next_tick_and_is_counted() -> None:
    seen = live_run()
    history = as_history(seen, 4)
    seq = sequencer(history)
    late = min((r for r in history if r.raw.topic == "md.bars"), key=lambda r: r.raw.offset)  # of the first tick
    for r in history:
        if r.raw.topic != CLOCK_TOPIC and r is not late:
            seq.add(r)
    first = list(seq.release(len(seq) - 1))  # every tick but the last handed over
    assert seq.add(late) == 0 and seq.misplaced == 1
    out = first + list(seq.finish())
    assert out[len(first)].value["event_id"] == late.raw.value["event_id"], "handed over before the next tick"
    assert out[len(first) + 1:] != [] and ids(out).count(ids([late.raw])[0]) == 1


@pytest.mark.kafka
def test_the_history_read_back_from_the_broker_comes_in_handling_order_with_a_bounded_part_held(
        kafka_config, kafka_topics) -> None:
    seen = live_run(times=150, symbols=("C", "A", "B", "E", "D"))
    prefix, codec, ends = on_the_broker(kafka_config, kafka_topics, seen, phase_flush=True)
    replay = HistoryReplay(kafka_config, codec, ends, prefix, RANK, with_ticks=True, margin=2, fetch_bytes=2048)
    out = list(replay)
    assert ids(out) == ids(seen)
    assert replay.records == len(seen) and replay.misplaced == 0
    assert replay.max_held < len(seen) // 4, f"{replay.max_held} of {len(seen)} records waited at once"


@pytest.mark.kafka
def test_a_history_that_cannot_be_read_to_its_end_stops_the_rebuild_naming_the_partition(
        kafka_config, kafka_topics) -> None:
    prefix, codec, ends = on_the_broker(kafka_config, kafka_topics, live_run(times=3))
    short = next(tp for tp, end in ends.items() if end > 0 and tp[0].endswith("md.bars"))
    ends[short] += 5  # committed past what the partition holds (e.g. deleted and recreated): never reached
    replay = HistoryReplay(kafka_config, codec, ends, prefix, RANK, with_ticks=True, timeout_s=2.0)
    with pytest.raises(HistoryTimeout, match=re.escape(repr(short))):
        list(replay)


@pytest.mark.kafka
def test_the_time_the_engine_takes_between_records_never_times_the_rebuild_out(kafka_config, kafka_topics) -> None:
    seen = live_run(times=400)  # 1200 ticks: more than the reader takes in one batch
    prefix, codec, ends = on_the_broker(kafka_config, kafka_topics, seen)
    out: list[Message] = []
    for msg in HistoryReplay(kafka_config, codec, ends, prefix, RANK, with_ticks=True, timeout_s=1.0):
        out.append(msg)
        if sum(m.topic == CLOCK_TOPIC for m in out) == 1 and msg.topic != CLOCK_TOPIC:
            time.sleep(0.5)  # a slow engine once the ticks are being read: beyond the second the reading may idle
    assert ids(out) == ids(seen)


@pytest.mark.kafka
def test_without_lockstep_a_restarted_consumer_gets_its_history_back_in_broker_time_order(
        kafka_config, kafka_topics) -> None:
    prefix = kafka_topics("md.bars", CLOCK_TOPIC)
    source = KafkaBus(kafka_config, topic_prefix=prefix)  # not in lockstep: no record carries a phase
    ingest = source.publisher("ingest")
    published = list(bars_and_ticks(12, ["C", "A", "B"]))
    for topic, key, value in published:
        if topic == CLOCK_TOPIC:  # each tick after the bars before it, a few milliseconds apart
            source.flush()
            time.sleep(0.005)
        ingest.publish(topic, value, key=key)
        if topic == CLOCK_TOPIC:
            source.flush()
            time.sleep(0.005)
    source.flush()

    def run(handled: list[Message]) -> None:
        bus = KafkaBus(kafka_config, topic_prefix=prefix)
        bus.subscribe("probe", ["md.bars", CLOCK_TOPIC], handled.append, rebuild=True)
        bus.run_service("probe", idle_exit_s=2.0)

    first: list[Message] = []
    run(first)  # as they arrive: a tick may come before bars published before it (another partition)
    again: list[Message] = []
    run(again)  # nothing new: everything it gets is its history, handed over again

    def between_ticks(items: list[tuple[str, str | None, dict]]) -> list[list[tuple]]:
        groups: list[list[tuple]] = [[]]
        for topic, key, value in items:
            if topic == CLOCK_TOPIC:
                groups += [[value["event_id"]], []]
            else:
                groups[-1].append((key, value["event_id"]))
        return [sorted(g) for g in groups]

    assert sorted(m.value["event_id"] for m in first) == sorted(v["event_id"] for _t, _k, v in published)
    # Rebuilt in broker-time order: each tick after the bars published before it, however they first arrived.
    assert between_ticks([(m.topic, m.key, m.value) for m in again]) == between_ticks(published)


@pytest.mark.kafka
def test_without_lockstep_a_consumer_of_no_ticks_gets_its_history_placed_by_them_as_it_is_read(
        kafka_config, kafka_topics, caplog) -> None:
    prefix = kafka_topics("md.bars", CLOCK_TOPIC)
    source = KafkaBus(kafka_config, topic_prefix=prefix)
    ingest = source.publisher("ingest")
    published = list(bars_and_ticks(40, ["C", "A", "B"]))
    for topic, key, value in published:
        ingest.publish(topic, value, key=key)
        if topic == CLOCK_TOPIC:
            source.flush()
    source.flush()

    def run(handled: list[Message]) -> None:
        bus = KafkaBus(kafka_config, topic_prefix=prefix)
        bus.subscribe("probe", ["md.bars"], handled.append, rebuild=True)  # the bars alone, as the regime engine
        bus.run_service("probe", idle_exit_s=2.0)

    first: list[Message] = []
    run(first)
    again: list[Message] = []
    with caplog.at_level(logging.INFO, logger="quorum_common.bus.kafka"):
        run(again)
    rebuilt = [r for r in caplog.records if r.getMessage() == "state rebuilt from input history"]
    assert len(rebuilt) == 1 and rebuilt[0].records == 120 + 120  # the bars, and the ticks that placed them
    assert rebuilt[0].late == 0, "every bar placed at a tick, none held to the end"
    assert sorted(m.value["event_id"] for m in again) == sorted(m.value["event_id"] for m in first)
    assert {m.topic for m in again} == {"md.bars"}
    assert [m.ts_event for m in again] == sorted(m.ts_event for m in again)


def on_the_broker(kafka_config: dict[str, str], kafka_topics, seen: list[Message],
                  phase_flush: bool = False) -> tuple[str, TopicCodec, dict[tuple[str, int], int]]:
    """``seen`` produced to topics of a fresh prefix with their headers (``phase_flush``: each phase flushed apart,
    as the desk publishes them); the prefix, the codec and every partition's end offset, which a group that handled
    everything would have committed."""
    topics = sorted({m.topic for m in seen})
    prefix = kafka_topics(*topics)
    codec, producer, failed = TopicCodec(), Producer({**kafka_config, "enable.idempotence": True}), []
    for m in seen:
        producer.produce(prefix + m.topic, codec.encode(m.topic, m.value), key=m.key,
                         headers=[(k, v.encode()) for k, v in m.headers.items()],
                         on_delivery=lambda err, _msg: failed.append(err) if err is not None else None)
        if phase_flush and m.topic == CLOCK_TOPIC:
            assert producer.flush(30) == 0
    assert producer.flush(30) == 0 and not failed, failed[:3]
    probe = Consumer({**kafka_config, "group.id": "probe"})
    try:
        deadline = time.monotonic() + 30
        while True:  # every record acknowledged; wait until the end offsets show them all
            ends = {(prefix + t, p): probe.get_watermark_offsets(TopicPartition(prefix + t, p), timeout=10)[1]
                    for t in topics for p in range(CATALOG.topic(t).partitions)}
            if sum(ends.values()) >= len(seen) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        probe.close()
    assert sum(ends.values()) == len(seen), f"{sum(ends.values())} records on the broker, {len(seen)} produced"
    return prefix, codec, ends


@pytest.mark.kafka
def test_exactly_once_a_restart_fences_off_the_open_transaction_of_the_instance_it_replaces(
        kafka_config, kafka_topics) -> None:
    """A predecessor killed inside a transaction leaves offsets pending, and the broker answers no committed offset of
    the group until that transaction ends; a successor that read its commits before fencing it off would wait for the
    transaction to time out (here 10 minutes) and fail its rebuild."""
    prefix = kafka_topics("md.bars", CLOCK_TOPIC)
    source = KafkaBus(kafka_config, topic_prefix=prefix)
    ingest = source.publisher("ingest")
    for topic, key, value in bars_and_ticks(5, ["C", "A", "B"]):
        ingest.publish(topic, value, key=key)
    source.flush()

    def run(handled: list[Message]) -> None:
        bus = KafkaBus(kafka_config, topic_prefix=prefix, delivery="exactly_once")
        bus.subscribe("probe", ["md.bars", CLOCK_TOPIC], handled.append, rebuild=True)
        bus.run_service("probe", idle_exit_s=2.0)

    first: list[Message] = []
    run(first)  # handles everything and commits it in its transactions
    group = Consumer({**kafka_config, "group.id": consumer_group(prefix, "probe")})
    predecessor = Producer({**kafka_config, "transactional.id": f"{prefix}probe-0",
                            "transaction.timeout.ms": 600_000})
    try:
        predecessor.init_transactions(30)
        predecessor.begin_transaction()
        offsets = [TopicPartition(prefix + t, p, 0) for t in ("md.bars", CLOCK_TOPIC)
                   for p in range(CATALOG.topic(t).partitions)]
        predecessor.send_offsets_to_transaction(offsets, group.consumer_group_metadata(), 30)
        # ... and killed here: its transaction stays open, offsets pending.
        again: list[Message] = []
        started = time.monotonic()
        run(again)
        took = time.monotonic() - started
    finally:
        group.close()
    assert len(first) == 15 + 15
    assert sorted(m.value["event_id"] for m in again) == sorted(m.value["event_id"] for m in first)
    assert took < 25, f"the restart took {took:.1f} s"


class Recorder(Engine):
    """A probe engine whose whole state is what it was handed: (topic, event id) in order."""

    inputs = ("md.bars", "mandate.compiled", CLOCK_TOPIC)
    rebuilds_from_history = True

    def __init__(self, publisher: Any) -> None:
        super().__init__(publisher)
        self.settings = None
        self.seen: list[tuple[str, str]] = []

    def handle(self, msg: Message) -> None:
        self.seen.append((msg.topic, msg.value["event_id"]))


def publish_in_lockstep(source: KafkaBus, items: list[tuple[str, str, dict]]) -> list[tuple[str, str]]:
    """Publish ``items`` as the ingest of a lockstep source does (each tick waits for the records before it: x-after),
    flushed; their (topic, event id)."""
    ingest = source.publisher("ingest")
    for topic, key, value in items:
        if topic == CLOCK_TOPIC:
            source.flush()
            ingest.after = dict(ingest.published_offsets)
        ingest.publish(topic, value, key=key)
    source.flush()
    return [(topic, value["event_id"]) for topic, _key, value in items]


def run_probe(kafka_config: dict[str, str], prefix: str, caplog: pytest.LogCaptureFixture, probe: type = Recorder,
              max_bytes: int | None = None, **bus_options: Any) -> Any:
    """One run of a ``probe`` engine in lockstep, a checkpoint every 2,000 ns of event time (every other bar time of
    :func:`bars_and_ticks`), until 2 s pass without a record; ``max_bytes`` lowers the largest checkpoint sent."""
    bus = KafkaBus(kafka_config, topic_prefix=prefix, lockstep=True, checkpoint_every_days=2000 / DAY_NS,
                   **bus_options)
    if max_bytes is not None:
        bus.checkpoint_max_bytes = max_bytes
    engine = probe(bus.publisher("probe"))
    bus.subscribe_engine("probe", engine)
    with caplog.at_level(logging.INFO, logger="quorum_common.bus.kafka"):
        bus.run_service("probe", idle_exit_s=2.0)
    return engine


def restored_checkpoints(caplog: pytest.LogCaptureFixture) -> list[int | None]:
    """Per rebuild logged, the event time of the checkpoint it went on from (None: the whole history)."""
    return [r.checkpoint for r in caplog.records if r.getMessage() == "state rebuilt from input history"]


def reported_ticks(kafka_config: dict[str, str], prefix: str, service: str) -> set[str]:
    """The ids of the ticks ``service`` has reported on, as the source can read them now."""
    codec = TopicCodec()
    reports = (codec.decode(PROGRESS_TOPIC, m.value())[1]
               for m in read_topic(kafka_config, prefix + PROGRESS_TOPIC, idle_s=0.3, timeout_s=10))
    return {r["tick_id"] for r in reports if r["service"] == service}


@pytest.mark.kafka
def test_a_checkpoint_is_written_after_the_report_so_it_never_holds_the_phase(kafka_config, kafka_topics,
                                                                             caplog) -> None:
    """When the engine is asked for its checkpoint, the source can already read the report on the tick it just
    handled: the desk goes on with the next phase while the service writes its state (the critic's is the largest)."""
    prefix = kafka_topics("md.bars", "mandate.compiled", CLOCK_TOPIC, "state.checkpoints", "sys.progress")
    publish_in_lockstep(KafkaBus(kafka_config, topic_prefix=prefix, lockstep=True), list(bars_and_ticks(8, ["C", "A"])))

    class ReportsFirst(Recorder):
        """Notes, at each checkpoint, whether the report on the tick just handled was readable then."""

        def __init__(self, publisher: Any) -> None:
            super().__init__(publisher)
            self.reported_first: list[bool] = []

        def checkpoint(self) -> bytes | None:
            tick = next(i for t, i in reversed(self.seen) if t == CLOCK_TOPIC)
            self.reported_first.append(tick in reported_ticks(kafka_config, prefix, "probe"))
            return super().checkpoint()

    probe = run_probe(kafka_config, prefix, caplog, probe=ReportsFirst, checkpoint_key=KEY)
    assert len(probe.reported_first) >= 3 and all(probe.reported_first), probe.reported_first


@pytest.mark.kafka
def test_restarts_from_checkpoints_hand_every_record_to_the_engine_once(kafka_config, kafka_topics, caplog) -> None:
    """Three runs, each on more bars: the second and third restore the last checkpoint before them and get only the
    history after it. The mandate, published once before the first, must not come again: a checkpoint taken after a
    restart still names the partitions that brought nothing since. A fourth run with another checkpoint key refuses
    the checkpoints (their tags do not match) and rebuilds from the whole history, to the same state; a fifth, with
    that key and the first as the previous one (a rotation), restores them again."""
    prefix = kafka_topics("md.bars", "mandate.compiled", CLOCK_TOPIC, "state.checkpoints", "sys.progress")
    source = KafkaBus(kafka_config, topic_prefix=prefix, lockstep=True)
    ingest = source.publisher("ingest")
    mandate = {**sample_record(CATALOG.schema_for("mandate.compiled")), **envelope(500, "mandate")}
    ingest.publish("mandate.compiled", mandate, key="m")
    published = [("mandate.compiled", mandate["event_id"])]
    runs: list[Recorder] = []
    items = list(bars_and_ticks(60, ["C", "A"]))
    other = b"another desk's checkpoint key"
    for part, (key, previous) in enumerate(((KEY, None), (KEY, None), (KEY, None), (other, None), (other, KEY))):
        published += publish_in_lockstep(source, items[part * 180:(part + 1) * 180])  # 36 bar times, 5 records each
        runs.append(run_probe(kafka_config, prefix, caplog, checkpoint_key=key, checkpoint_previous_key=previous))
    restored = restored_checkpoints(caplog)
    assert len(restored) == 4 and None not in restored[:2], "the second and third runs went on from a checkpoint"
    assert restored[2] is None, "the fourth run, with another key, restored none"
    assert restored[3] == restored[1], "the fifth, with the first key as the previous one, restored the last again"
    refused = [r for r in caplog.records if r.getMessage().startswith("checkpoint not restored")]
    assert len(refused) == 1 and "CheckpointForged" in refused[0].error
    for run in runs[2:]:
        final = run.seen
        assert len(final) == len(set(final)), f"handed twice: {[x for x in final if final.count(x) > 1][:3]}"
        held = {(t, i) for t, i in published if t == "md.bars"} - set(final)
        assert not held, f"{len(held)} bars never handed"
        assert {x for x in final if x[0] != "md.bars"} == {x for x in published if x[0] != "md.bars"}
    assert runs[4].seen == runs[3].seen == runs[2].seen, "rebuilt or restored, the state is the same"


@pytest.mark.kafka
def test_exactly_once_a_checkpoint_of_an_aborted_transaction_is_never_restored(kafka_config, kafka_topics,
                                                                               caplog) -> None:
    """A predecessor killed inside the transaction that carried its newest checkpoint: the successor aborts that
    transaction (fencing it off) and restores the newest committed checkpoint, never the aborted one (which here
    is well sealed and names only offsets the group committed: read_committed alone keeps it out)."""
    prefix = kafka_topics("md.bars", "mandate.compiled", CLOCK_TOPIC, "state.checkpoints", "sys.progress")
    source = KafkaBus(kafka_config, topic_prefix=prefix, lockstep=True)
    publish_in_lockstep(source, list(bars_and_ticks(20, ["C", "A"])))

    first = run_probe(kafka_config, prefix, caplog, delivery="exactly_once", checkpoint_key=KEY)  # all committed
    poisoned = Recorder(None)
    poisoned.seen = [("poison", "aborted")]
    probe = Consumer({**kafka_config, "group.id": f"ends-{uuid.uuid4().hex[:8]}"})
    try:
        ends = {(prefix + t, p): probe.get_watermark_offsets(TopicPartition(prefix + t, p), timeout=10)[1]
                for t in ("md.bars", "mandate.compiled", CLOCK_TOPIC) for p in range(CATALOG.topic(t).partitions)}
    finally:
        probe.close()
    tick = Message(CLOCK_TOPIC, "XNYS", clock_tick("BAR_CLOSE", 99_000, 999), "ClockTicked")
    record = checkpoint_record("probe", poisoned, tick, ends, seal(poisoned.checkpoint(), KEY),
                               lambda t: t.removeprefix(prefix))
    predecessor = Producer({**kafka_config, "transactional.id": f"{prefix}probe-0", "transaction.timeout.ms": 600_000})
    predecessor.init_transactions(30)
    predecessor.begin_transaction()
    predecessor.produce(prefix + "state.checkpoints", TopicCodec().encode("state.checkpoints", record), b"probe")
    assert predecessor.flush(30) == 0
    # ... and killed here: its transaction, with the checkpoint, stays open.
    second = run_probe(kafka_config, prefix, caplog, delivery="exactly_once", checkpoint_key=KEY)
    restored = restored_checkpoints(caplog)
    assert len(restored) == 1 and restored[0] is not None and restored[0] < 99_000, restored
    assert ("poison", "aborted") not in second.seen
    assert second.seen == first.seen


class Ballast(Recorder):
    """A probe whose state grows by 1 kB of incompressible bytes every bar time."""

    def __init__(self, publisher: Any) -> None:
        super().__init__(publisher)
        self.ballast = b""

    def handle(self, msg: Message) -> None:
        super().handle(msg)
        if msg.topic == CLOCK_TOPIC and msg.value["kind"] == "BAR_CLOSE":
            self.ballast += random.Random(msg.ts_event).randbytes(1024)


@pytest.mark.kafka
def test_a_checkpoint_too_large_for_its_topic_is_skipped_and_the_service_goes_on(kafka_config, kafka_topics,
                                                                                  caplog) -> None:
    """The producer refuses a record over the topic's ``max.message.bytes`` (which would stop the service): a
    checkpoint that large is skipped with a warning, and a restart goes on from the last one that fitted."""
    prefix = kafka_topics("md.bars", "mandate.compiled", CLOCK_TOPIC, "state.checkpoints", "sys.progress")
    source = KafkaBus(kafka_config, topic_prefix=prefix, lockstep=True)
    publish_in_lockstep(source, list(bars_and_ticks(20, ["C", "A"])))
    limit = 12_000  # about the state of the first half of the bar times
    first = run_probe(kafka_config, prefix, caplog, Ballast, limit, checkpoint_key=KEY)
    written = [r.ts_event for r in caplog.records if r.getMessage() == "engine checkpoint written"]
    skipped = [r.ts_event for r in caplog.records if r.getMessage().startswith("engine checkpoint too large")]
    assert written and skipped and max(written) < min(skipped), (written, skipped)
    assert len(first.seen) == len(set(first.seen)) == 20 * 5, "every bar and tick handed once"
    caplog.clear()
    second = run_probe(kafka_config, prefix, caplog, Ballast, limit, checkpoint_key=KEY)
    assert restored_checkpoints(caplog) == [max(written)]
    assert (second.seen, second.ballast) == (first.seen, first.ballast)
