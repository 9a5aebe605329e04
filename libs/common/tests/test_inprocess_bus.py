"""The in-process bus: event-time order, determinism, dead letters, sources, tracing headers."""

from __future__ import annotations

import time

from quorum_common.bus.inprocess import InProcessBus
from quorum_common.bus.message import Message
from quorum_common.engine import envelope
from quorum_common.phases import clock_tick
from quorum_common.schemas import default_catalog
from quorum_common.testing.samples import sample_record


def bar(ts: int, symbol: str = "AAA", close: float = 100.0) -> dict:
    rec = sample_record(default_catalog().schema_for("md.bars"), seed=ts)
    rec.update(envelope(ts, "bar", symbol), symbol=symbol, close=close)
    return rec


def test_delivers_in_event_time_order_with_publication_order_breaking_ties() -> None:
    bus = InProcessBus()
    seen: list[tuple[int, str]] = []
    bus.subscribe("probe", ["md.bars"], lambda m: seen.append((m.ts_event, m.value["symbol"])))
    pub = bus.publisher("feed")
    for ts, sym in [(30, "C"), (10, "A"), (20, "B"), (10, "A2")]:
        pub.publish("md.bars", bar(ts, sym), key=sym)
    assert bus.run() == 4
    assert seen == [(10, "A"), (10, "A2"), (20, "B"), (30, "C")]


def test_handler_outputs_are_delivered_after_the_input_and_in_order() -> None:
    bus = InProcessBus()
    order: list[str] = []
    pub = bus.publisher("echo")

    def echo(msg: Message) -> None:
        order.append(f"bar@{msg.ts_event}")
        out = sample_record(default_catalog().schema_for("signals.raw"), seed=msg.ts_event)
        out.update(envelope(msg.ts_event, "sig"), symbol=msg.value["symbol"])
        pub.publish("signals.raw", out, key=msg.key)

    bus.subscribe("echo", ["md.bars"], echo)
    bus.subscribe("probe", ["signals.raw"], lambda m: order.append(f"sig@{m.ts_event}"))
    bus.add_source("feed", (("md.bars", "A", bar(ts)) for ts in (1, 2, 3)))
    bus.run()
    assert order == ["bar@1", "sig@1", "bar@2", "sig@2", "bar@3", "sig@3"]


def test_a_failing_handler_dead_letters_the_record_and_the_others_go_on() -> None:
    bus = InProcessBus()
    good: list[int] = []

    def fragile(msg: Message) -> None:
        if msg.value["close"] < 0:
            raise ValueError("negative close")
        good.append(msg.ts_event)

    bus.subscribe("fragile", ["md.bars"], fragile)
    pub = bus.publisher("feed")
    for ts, close in [(1, 10.0), (2, -1.0), (3, 12.0)]:
        pub.publish("md.bars", bar(ts, close=close))
    bus.inject_raw("md.bars", "X", b"not avro at all", ts_event=4)
    bus.run()
    assert good == [1, 3]
    reasons = [(d.reason, d.dlq_topic) for d in bus.dead_letters]
    assert reasons == [("handler_error", "dlq.md.bars"), ("decode_error", "dlq.md.bars")]
    assert "negative close" in bus.dead_letters[0].error
    assert bus.dead_letters[1].payload == b"not avro at all"


def test_sources_are_merged_lazily_by_event_time() -> None:
    bus = InProcessBus()
    seen: list[str] = []
    bus.subscribe("probe", ["md.bars"], lambda m: seen.append(m.value["symbol"]))
    bus.add_source("a", (("md.bars", "A", bar(ts, "A")) for ts in (1, 4, 6)))
    bus.add_source("b", (("md.bars", "B", bar(ts, "B")) for ts in (2, 3, 7)))
    bus.run()
    assert seen == ["A", "B", "B", "A", "A", "B"]


def test_the_same_input_gives_the_same_delivery_twice() -> None:
    def run() -> list[tuple]:
        bus = InProcessBus()
        out: list[tuple] = []
        bus.subscribe("probe", ["md.bars"], lambda m: out.append((m.ts_event, m.key, m.value["close"])))
        bus.add_source("a", (("md.bars", str(i % 3), bar(i // 2, str(i % 3), float(i))) for i in range(50)))
        bus.run()
        return out

    assert run() == run()


def test_publishing_to_a_topic_outside_the_catalog_is_refused() -> None:
    import pytest
    from quorum_common.schemas import SchemaError

    bus = InProcessBus()
    with pytest.raises(SchemaError, match=r"no\.such\.topic"):
        bus.publisher("x").publish("no.such.topic", bar(1))


def test_an_engine_can_dead_letter_bad_input_with_its_reason() -> None:
    bus = InProcessBus()
    pub = bus.publisher("ingest")
    broken = bar(5, close=float("nan"))
    pub.dead_letter("md.bars", broken, "nan_price", key="AAA", error="close is NaN")
    pub.dead_letter("md.bars", {"not": "a bar", "ts": object()}, "malformed_row")
    first, second = bus.dead_letters
    assert (first.reason, first.error, first.service, first.key) == ("nan_price", "close is NaN", "ingest", "AAA")
    assert bus.codec.decode("md.bars", first.payload)[1]["symbol"] == "AAA"  # kept as Avro: nothing lost
    assert b'"not": "a bar"' in second.payload  # too broken for Avro: kept as JSON


def test_handler_time_is_summed_by_service_only_when_asked_for() -> None:
    def slow(_msg: Message) -> None:
        time.sleep(0.01)

    def failing(_msg: Message) -> None:
        time.sleep(0.01)
        raise ValueError("bad")

    for lockstep in (False, True):
        bus = InProcessBus(time_handlers=True, lockstep=lockstep)
        bus.subscribe("slow", ["md.bars"], slow)
        bus.subscribe("failing", ["md.bars"], failing)
        bus.subscribe("quick", ["md.bars"], lambda _msg: None)
        for ts in (10, 20, 30):
            bus.publisher("feed").publish("md.bars", bar(ts), key="AAA")
        bus.publisher("feed").publish("sys.clock", clock_tick("BAR_CLOSE", 40, 1), key="XNYS")  # releases them
        bus.run()
        assert set(bus.handler_s) == {"slow", "failing", "quick"}
        assert bus.handler_s["slow"] >= 0.03 and bus.handler_s["failing"] >= 0.03  # a failed call counts too
        assert bus.handler_s["quick"] < bus.handler_s["slow"]
        assert len(bus.dead_letters) == 3
    assert InProcessBus().handler_s is None
