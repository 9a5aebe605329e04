"""The order in which a restarted lockstep consumer hands its history to its engine (bus/rebuild.py) is the order
in which it handled those records the first time."""

from __future__ import annotations

import random

from quorum_common.bus.inprocess import InProcessBus
from quorum_common.bus.lockstep import CLOCK_TOPIC
from quorum_common.bus.message import Message
from quorum_common.bus.rebuild import HistoryRecord, replay_order
from quorum_common.engine import envelope
from quorum_common.phases import clock_tick
from quorum_common.schemas import default_catalog
from quorum_common.testing.samples import sample_record

CATALOG = default_catalog()
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


def live_run() -> list[Message]:
    """What a lockstep consumer of bars, signals (a relay's, one tick behind the bars) and ticks is handed."""
    bus = InProcessBus(lockstep=True)
    relay = bus.publisher("relay")
    bus.subscribe("relay", ["md.bars"], lambda m: relay.publish(
        "signals.raw", {**SIGNAL, **envelope(m.ts_event, "sig", m.key), "symbol": m.key}, key=m.key))
    seen: list[Message] = []
    bus.subscribe("probe", ["md.bars", "signals.raw", CLOCK_TOPIC], seen.append)
    bus.add_source("ingest", bars_and_ticks(6, ["C", "A", "B"]))
    bus.run()
    return seen


def as_history(seen: list[Message], seed: int) -> list[HistoryRecord]:
    """The records as read back from the broker: offsets per topic, tick timestamps rising, in a shuffled order."""
    offsets: dict[str, int] = {}
    out = []
    for i, m in enumerate(seen):
        offset = offsets[m.topic] = offsets.get(m.topic, -1) + 1
        out.append(HistoryRecord(Message(m.topic, m.key, m.value, m.schema, m.headers, 0, offset), 10 * i))
    random.Random(seed).shuffle(out)
    return out


def ids(msgs: list[Message]) -> list[tuple[str, str | None, str]]:
    return [(m.topic, m.key, m.value["event_id"]) for m in msgs]


def test_the_rebuild_hands_the_records_over_in_the_order_the_live_consumer_handled_them() -> None:
    seen = live_run()
    assert {m.topic for m in seen} == {"md.bars", "signals.raw", CLOCK_TOPIC}
    for seed in range(5):
        ordered, late = replay_order(as_history(seen, seed), RANK)
        assert ids(ordered) == ids(seen)
        assert late == 0


def test_an_engine_without_the_clock_gets_the_same_records_without_the_ticks() -> None:
    seen = live_run()
    ordered, _late = replay_order(as_history(seen, 1), RANK, with_ticks=False)
    assert ids(ordered) == ids([m for m in seen if m.topic != CLOCK_TOPIC])


def test_a_record_from_outside_the_lockstep_is_released_at_the_first_tick_not_older_than_it() -> None:
    seen = live_run()
    history = as_history(seen, 2)
    ticks = sorted((r for r in history if r.msg.topic == CLOCK_TOPIC), key=lambda r: r.msg.offset)
    command = sample_record(CATALOG.schema_for("control.commands"))

    def outside(event_id: str, timestamp_ms: int) -> HistoryRecord:
        # An operator's command: no x-phase header, its event time the wall clock's (far after the replayed data).
        value = {**command, "event_id": event_id, "ts_event": 2 * 10**18}
        return HistoryRecord(Message("control.commands", "desk", value, "cmd", {}, 0, 0), timestamp_ms)

    ordered, late = replay_order([*history, outside("cmd-1", ticks[4].timestamp_ms - 5),
                                  outside("cmd-2", ticks[-1].timestamp_ms + 5)], RANK)
    where = [m.value["event_id"] for m in ordered].index("cmd-1")
    assert ordered[where + 1].value["event_id"] == ticks[4].msg.value["event_id"], "released just before tick 4"
    assert ordered[-1].value["event_id"] == "cmd-2" and late == 1, "after the last tick: handed over at the end"
    assert ids([m for m in ordered if m.topic != "control.commands"]) == ids(seen)
