"""Lockstep delivery on the in-process bus: phases cut by clock ticks, canonical order inside a phase."""

from __future__ import annotations

import pytest
from quorum_common.bus.inprocess import InProcessBus, LockstepViolation
from quorum_common.bus.lockstep import PHASE_HEADER, PhaseBuffer, canonical_key
from quorum_common.bus.message import Message
from quorum_common.engine import envelope
from quorum_common.phases import clock_tick
from quorum_common.schemas import default_catalog
from quorum_common.testing.samples import sample_record

CATALOG = default_catalog()


def bar(ts: int, symbol: str) -> dict:
    rec = sample_record(CATALOG.schema_for("md.bars"), seed=ts)
    rec.update(envelope(ts, "bar", symbol), symbol=symbol)
    return rec


def source(times: list[int], symbols: list[str]):
    seq = 0
    for t in times:
        for s in symbols:
            yield "md.bars", s, bar(t, s)
        for kind in ("BAR_CLOSE", "VOTE"):
            seq += 1
            yield "sys.clock", "XNYS", clock_tick(kind, t, seq)


def test_records_wait_for_the_next_tick_and_come_in_canonical_order() -> None:
    bus = InProcessBus(lockstep=True)
    seen: list[tuple[str, int, str | None]] = []
    bus.subscribe("probe", ["md.bars", "sys.clock"], lambda m: seen.append((m.topic, m.ts_event, m.key)))
    bus.add_source("ingest", source([1000, 2000], ["B", "A"]))
    bus.run()
    assert seen == [
        ("md.bars", 1000, "A"), ("md.bars", 1000, "B"), ("sys.clock", 1001, "XNYS"), ("sys.clock", 1002, "XNYS"),
        ("md.bars", 2000, "A"), ("md.bars", 2000, "B"), ("sys.clock", 2001, "XNYS"), ("sys.clock", 2002, "XNYS"),
    ]


def test_each_hop_through_a_service_takes_one_tick() -> None:
    bus = InProcessBus(lockstep=True)
    pub = bus.publisher("relay")
    template = sample_record(CATALOG.schema_for("signals.raw"))

    def relay(msg: Message) -> None:
        pub.publish("signals.raw", {**template, **envelope(msg.ts_event, "sig", msg.key), "symbol": msg.key},
                    key=msg.key)

    seen: list[tuple[str, int]] = []
    bus.subscribe("relay", ["md.bars"], relay)

    def probe(m: Message) -> None:
        seen.append((m.topic, m.ts_event if m.topic == "sys.clock" else int(m.headers[PHASE_HEADER])))

    bus.subscribe("probe", ["signals.raw", "sys.clock"], probe)
    bus.add_source("ingest", source([1000], ["A"]))
    bus.run()
    # The bar is released to the relay at tick 1001; its signal (phase 1001) reaches the probe at tick 1002.
    assert seen == [("sys.clock", 1001), ("signals.raw", 1001), ("sys.clock", 1002)]


def test_phase_buffer_releases_only_earlier_phases_sorted() -> None:
    rank = {t.name: i for i, t in enumerate(CATALOG)}
    buf = PhaseBuffer(rank)
    msgs = [
        Message("signals.raw", "B", {"ts_event": 5, "event_id": "2"}, "s", {PHASE_HEADER: "10"}),
        Message("md.bars", "A", {"ts_event": 5, "event_id": "1"}, "s", {PHASE_HEADER: "10"}),
        Message("md.bars", "A", {"ts_event": 4, "event_id": "0"}, "s", {PHASE_HEADER: "20"}),
    ]
    for m in msgs:
        buf.add(m)
    released = [m for m, _ in buf.release(20)]
    assert [m.value["event_id"] for m in released] == ["1", "2"]
    assert len(buf) == 1
    assert canonical_key(msgs[2], rank) < canonical_key(msgs[1], rank)


def test_a_bar_time_has_five_phase_ticks_then_its_calendar_boundaries() -> None:
    from quorum_common.bus.topic_codec import TopicCodec
    from quorum_common.phases import bar_time, phase_ticks

    ticks = phase_ticks(1_000_000, 7, calendar_kinds=("MONTH_END", "DAY_END"))
    assert [(t["kind"], t["ts_event"] - 1_000_000, t["sequence"]) for t in ticks] == [
        ("BAR_CLOSE", 1, 7), ("VOTE", 2, 8), ("REBALANCE", 3, 9), ("RISK_CHECK", 4, 10), ("ROUTE", 5, 11),
        ("DAY_END", 6, 12), ("MONTH_END", 6, 13),
    ]
    assert {bar_time(t["ts_event"]) for t in ticks} == {1_000_000}
    codec = TopicCodec()
    for t in ticks:
        codec.encode("sys.clock", t)


def test_phase_buffer_takes_a_known_phase_and_order_instead_of_working_them_out() -> None:
    buf = PhaseBuffer({t.name: i for i, t in enumerate(CATALOG)})
    # the header says phase 30 and the record time 1, but the transport's phase and order win
    late = Message("md.bars", "A", {"ts_event": 1, "event_id": "late"}, "s", {PHASE_HEADER: "30"})
    early = Message("md.bars", "B", {"ts_event": 9, "event_id": "early"}, "s", {PHASE_HEADER: "30"})
    buf.add(late, "l", phase=10, key=(2,))
    buf.add(early, "e", phase=10, key=(1,))
    assert buf.release(10) == []
    assert [(m.value["event_id"], c) for m, c in buf.release(11)] == [("early", "e"), ("late", "l")]
    assert len(buf) == 0


def test_the_in_process_bus_hands_every_buffer_its_records_in_order_with_their_phase_header() -> None:
    bus = InProcessBus(lockstep=True)
    seen: dict[str, list[tuple[str, str | None, dict]]] = {"one": [], "two": []}
    for name, got in seen.items():
        bus.subscribe(name, ["md.bars"], lambda m, got=got: got.append((m.topic, m.key, m.headers)))
    bus.add_source("ingest", source([1000, 2000], ["B", "A"]))
    bus.run()
    want = [("md.bars", s, {PHASE_HEADER: str(p)}) for p, s in ((0, "A"), (0, "B"), (1002, "A"), (1002, "B"))]
    assert seen["one"] == seen["two"] == want


def test_a_message_reads_its_event_time_once() -> None:
    value = {"ts_event": 7, "event_id": "x"}
    msg = Message("md.bars", None, value, "s")
    assert msg.ts_event == 7 and isinstance(msg.ts_event, int)
    value["ts_event"] = 8  # records are not changed after delivery; the first read stands
    assert msg.ts_event == 7
    assert Message("md.bars", None, {"ts_event": 9}, "s").ts_event == 9


def _publishing_on_ticks(acts_on: tuple[str, ...] | None, kinds: set[str]) -> list[str]:
    """A desk of one clock-driven engine that publishes a signal on every tick of ``kinds`` (with nothing released
    to it: it consumes only the clock); the kinds of the ticks it published on."""
    bus = InProcessBus(lockstep=True)
    pub, published = bus.publisher("voter"), []

    def on_tick(msg: Message) -> None:
        if msg.value["kind"] in kinds:
            published.append(msg.value["kind"])
            pub.publish("signals.raw", {**sample_record(CATALOG.schema_for("signals.raw")),
                                        **envelope(msg.ts_event, "sig", msg.value["kind"])}, key="A")

    bus.subscribe("voter", ["sys.clock"], on_tick, acts_on)
    bus.add_source("ingest", source([1000, 2000], ["A"]))
    bus.run()
    return published


def test_an_engine_publishes_freely_on_the_ticks_it_acts_on() -> None:
    assert _publishing_on_ticks(("VOTE",), {"VOTE"}) == ["VOTE", "VOTE"]
    assert _publishing_on_ticks(None, {"BAR_CLOSE", "VOTE"}) == ["BAR_CLOSE", "VOTE"] * 2  # None: every kind


def test_an_engine_publishing_on_a_tick_it_does_not_act_on_stops_the_run_naming_the_kind() -> None:
    """Over Kafka the source would not wait for that record's report (bus/phase_barrier.py): a programming error,
    not a dead letter."""
    with pytest.raises(LockstepViolation, match=r"voter published signals\.raw on a BAR_CLOSE tick"):
        _publishing_on_ticks(("VOTE",), {"BAR_CLOSE", "VOTE"})


def test_an_engine_may_publish_on_any_tick_that_released_records_to_it() -> None:
    """Records released at a tick make its kind one the engine may publish on (the source sees them coming): here
    the bars released at BAR_CLOSE, turned into signals when the tick itself is handled."""
    bus = InProcessBus(lockstep=True)
    pub, pending, kinds = bus.publisher("relay"), [], []

    def on_message(msg: Message) -> None:
        if msg.topic == "md.bars":
            pending.append(msg.key)
            return
        kinds.append(msg.value["kind"])
        while pending:
            symbol = pending.pop()
            pub.publish("signals.raw", {**sample_record(CATALOG.schema_for("signals.raw")),
                                        **envelope(msg.ts_event, "sig", symbol)}, key=symbol)

    bus.subscribe("relay", ["md.bars", "sys.clock"], on_message, acts_on=())
    bus.add_source("ingest", source([1000], ["A", "B"]))
    bus.run()
    assert bus.published["signals.raw"] == 2 and kinds == ["BAR_CLOSE", "VOTE"]
