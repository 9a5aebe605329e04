"""The pure parts of the lockstep phase barrier: the x-after header and the phase report."""

from __future__ import annotations

import pytest
from quorum_common.bus.phase_barrier import (
    PROGRESS_TOPIC,
    decode_after,
    encode_after,
    merge_offsets,
    phase_report,
)
from quorum_common.bus.topic_codec import TopicCodec
from quorum_common.phases import clock_tick


def test_after_header_round_trips_and_is_sorted() -> None:
    offsets = {("signals.raw", 3): 17, ("md.bars", 0): 5, ("md.bars", 1): 0}
    value = encode_after(offsets)
    assert value.startswith('[["md.bars",0,5]')
    assert decode_after(value) == offsets


@pytest.mark.parametrize("bad", ["", "not json", '[["md.bars", 0]]', '{"a": 1}', '[["t", "x", 1]]'])
def test_a_malformed_after_header_is_refused_naming_the_header(bad: str) -> None:
    with pytest.raises(ValueError, match="x-after"):
        decode_after(bad)


def test_merge_keeps_the_highest_offset_per_partition() -> None:
    into = {("a", 0): 5, ("a", 1): 9}
    merge_offsets(into, {("a", 0): 7, ("a", 1): 3, ("b", 0): 1})
    assert into == {("a", 0): 7, ("a", 1): 9, ("b", 0): 1}


def test_a_phase_report_is_a_valid_record_of_its_topic() -> None:
    tick = clock_tick("VOTE", 1_000_000, 4)
    report = phase_report("alpha", tick, {("signals.raw", 2): 40})
    codec = TopicCodec()
    _schema, decoded = codec.decode(PROGRESS_TOPIC, codec.encode(PROGRESS_TOPIC, report))
    assert decoded["tick_id"] == tick["event_id"] and decoded["ts_event"] == tick["ts_event"]
    assert decoded["offsets"] == [{"topic": "signals.raw", "partition": 2, "next_offset": 40}]
    assert phase_report("alpha", tick, {})["event_id"] == report["event_id"]  # deterministic id


@pytest.mark.parametrize("lockstep", [False, True])
@pytest.mark.parametrize("linger_ms", [0, 7])
def test_lockstep_publishers_linger_until_their_phase_is_flushed(lockstep: bool, linger_ms: int) -> None:
    """In lockstep every publisher (consumer or source) is flushed at the end of each phase, so it lingers at
    least PHASE_LINGER_MS to send a phase's records together; outside lockstep the bus's linger holds.
    No broker is contacted: producers are made lazily."""
    from quorum_common.bus.kafka import PHASE_LINGER_MS, KafkaBus

    bus = KafkaBus({"bootstrap.servers": "127.0.0.1:1"}, linger_ms=linger_ms, lockstep=lockstep)
    bus.subscribe("alpha", ["md.bars"], lambda _msg: None)
    expected = max(linger_ms, PHASE_LINGER_MS) if lockstep else linger_ms
    assert bus.publisher("alpha")._linger_ms() == expected
    assert bus.publisher("ingest")._linger_ms() == expected
