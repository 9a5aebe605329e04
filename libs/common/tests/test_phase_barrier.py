"""The pure parts of the lockstep phase barrier: the x-after and x-wait headers, the phase report and the rule by
which the source waits for a consumer's report."""

from __future__ import annotations

import pytest
from quorum_common.bus.phase_barrier import (
    PROGRESS_TOPIC,
    WAIT_HEADER,
    ReportRule,
    decode_after,
    encode_after,
    encode_wait,
    merge_offsets,
    phase_report,
    released_topics,
    report_rule,
    services_to_wait,
    waited_on,
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


def test_a_phase_report_states_its_rule_and_the_source_reads_it_back() -> None:
    tick, codec = clock_tick("VOTE", 1_000_000, 4), TopicCodec()
    report = phase_report("manager", tick, {}, ["signals.raw", "sys.clock", "regime.state"], ("VOTE",))
    decoded = codec.decode(PROGRESS_TOPIC, codec.encode(PROGRESS_TOPIC, report))[1]
    assert decoded["inputs"] == ["regime.state", "signals.raw"]  # the clock is never released
    assert report_rule(decoded) == ReportRule(frozenset({"regime.state", "signals.raw"}), frozenset({"VOTE"}))
    every_tick = report_rule(codec.decode(PROGRESS_TOPIC, codec.encode(PROGRESS_TOPIC, phase_report("x", tick, {})))[1])
    assert every_tick.acts_on is None and every_tick.waits(set(), "DAY_END")


def test_a_report_of_the_earlier_version_makes_the_source_wait_on_every_tick() -> None:
    """A consumer of an earlier release sends reports without a rule: the source must keep waiting for it."""
    old = {"service": "alpha", "tick_id": "t", "offsets": []}
    assert report_rule(old).waits(set(), "ROUTE")


@pytest.mark.parametrize(("released", "kind", "waits"), [
    ({"md.bars"}, "BAR_CLOSE", True),  # records released to it: it may publish
    ({"orders.proposed"}, "BAR_CLOSE", False),  # none of its inputs
    (set(), "VOTE", True),  # a kind it acts on by itself
    (set(), "ROUTE", False),
])
def test_the_source_waits_for_a_consumer_where_it_may_publish(released: set[str], kind: str, waits: bool) -> None:
    rule = ReportRule(frozenset({"md.bars", "signals.raw"}), frozenset({"VOTE"}))
    assert rule.waits(released, kind) is waits


def test_the_source_waits_for_every_consumer_whose_rule_it_does_not_know_yet() -> None:
    rules = {"alpha": ReportRule(frozenset({"md.bars"}), frozenset()),
             "manager": ReportRule(frozenset({"signals.raw"}), frozenset({"VOTE"}))}
    services = ["alpha", "manager", "risk"]
    assert services_to_wait(services, rules, {"md.bars"}, "BAR_CLOSE") == ["alpha", "risk"]
    assert services_to_wait(services, rules, {"signals.raw"}, "VOTE") == ["manager", "risk"]
    assert services_to_wait(services, {**rules, "risk": ReportRule(frozenset({"orders.proposed"}), frozenset())},
                            set(), "ROUTE") == []


def test_released_topics_are_those_with_offsets_raised_between_two_stamps() -> None:
    before = {("md.bars", 0): 10, ("md.bars", 1): 4, ("signals.raw", 0): 7}
    after = {**before, ("md.bars", 1): 6, ("regime.state", 0): 1, ("sys.clock", 0): 99, ("sys.progress", 0): 5}
    assert released_topics(before, after) == {"md.bars", "regime.state"}  # ticks and reports are never released
    assert released_topics(after, after) == set()


def test_the_wait_header_names_the_consumers_and_its_absence_means_everyone() -> None:
    headers = {WAIT_HEADER: encode_wait(["alpha", "risk"])}
    assert waited_on("risk", headers) and not waited_on("manager", headers)
    assert not waited_on("alpha", {WAIT_HEADER: encode_wait([])})
    assert waited_on("alpha", {})  # a source of an earlier release waits for everyone


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
