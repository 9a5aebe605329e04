"""Data-quality checks: every reject reason, gap warnings, and dead letters through the bus."""

from __future__ import annotations

import math

import pytest
from quorum_common.bus.topic_codec import TopicCodec
from quorum_common.event_dates import day_ns as ns
from quorum_ingest.config import IngestSettings
from quorum_ingest.datasets import RawBar
from quorum_ingest.engine import BarReplaySource, SymbolStream
from quorum_ingest.quality import (
    DUPLICATE_TIMESTAMP,
    INCONSISTENT_OHLC,
    NAN,
    NEGATIVE_VOLUME,
    NON_POSITIVE_PRICE,
    OUT_OF_ORDER,
    QualityChecker,
)

DAY = 86_400 * 1_000_000_000
T0 = ns("2020-01-06")  # a Monday


def good(ts: int, close: float = 10.0) -> RawBar:
    return RawBar(ts, close, close + 1, close - 1, close, 100.0)


@pytest.mark.parametrize(("bad", "reason"), [
    (RawBar(T0, math.nan, 11, 9, 10, 1), NAN),
    (RawBar(T0, 10, 11, 9, 10, math.inf), NAN),
    (RawBar(T0, 10, 11, 9, math.nan, 1), NAN),
    (RawBar(T0, 10, 11, 9, 10, math.nan), NAN),
    (RawBar(T0, 10, 11, 9, 0.0, 1), NON_POSITIVE_PRICE),
    (RawBar(T0, -1, 11, -2, 10, 1), NON_POSITIVE_PRICE),
    (RawBar(T0, 10, 11, 9, 10, -5), NEGATIVE_VOLUME),
    (RawBar(T0, 10, 9, 11, 10, 1), INCONSISTENT_OHLC),
    (RawBar(T0, 10, 11, 9, 12, 1), INCONSISTENT_OHLC),
    (RawBar(T0, 8, 11, 9, 10, 1), INCONSISTENT_OHLC),
])
def test_bad_rows_are_rejected_with_their_reason(bad: RawBar, reason: str) -> None:
    checker = QualityChecker()
    verdict = checker.check("AAA", "1d", bad)
    assert verdict.reason == reason and verdict.detail
    assert checker.rejects[reason] == 1
    assert checker.check("AAA", "1d", good(T0)).reason is None  # the bad row did not become the last bar


def test_order_is_checked_per_symbol() -> None:
    checker = QualityChecker()
    assert checker.check("AAA", "1d", good(T0 + DAY)).reason is None
    assert checker.check("AAA", "1d", good(T0 + DAY)).reason == DUPLICATE_TIMESTAMP
    assert checker.check("AAA", "1d", good(T0)).reason == OUT_OF_ORDER
    assert checker.check("BBB", "1d", good(T0)).reason is None  # another symbol has its own order


def test_gaps_are_warnings_not_rejects() -> None:
    checker = QualityChecker(max_gap_intervals=5)
    assert checker.check("AAA", "1d", good(T0)).reason is None
    weekend = checker.check("AAA", "1d", good(T0 + 3 * DAY))
    assert weekend.reason is None and not weekend.gap
    gap = checker.check("AAA", "1d", good(T0 + 10 * DAY))
    assert gap.reason is None and gap.gap and "7.0 intervals" in gap.detail
    assert checker.gaps["AAA"] == 1 and sum(checker.rejects.values()) == 0


def test_replay_sends_rejects_to_the_dead_letter_topic_and_publishes_the_rest(run_on_bus) -> None:
    rows = [good(T0), RawBar(T0 + DAY, 10, 11, 9, math.nan, 1), good(T0 + DAY), good(T0 + DAY),
            good(T0 - DAY), RawBar(T0 + 2 * DAY, 10, 9, 11, 10, 1), good(T0 + 30 * DAY)]
    source = BarReplaySource(IngestSettings(), streams=[SymbolStream("KO", "1d", True, iter(rows))])
    bus, delivered = run_on_bus(source)
    bars = [m.value for m in delivered if m.topic == "md.bars"]
    assert [b["ts_event"] for b in bars] == [T0, T0 + DAY, T0 + 30 * DAY]
    assert [(d.topic, d.key, d.reason) for d in bus.dead_letters] == [
        ("md.bars", "KO", NAN), ("md.bars", "KO", DUPLICATE_TIMESTAMP), ("md.bars", "KO", OUT_OF_ORDER),
        ("md.bars", "KO", INCONSISTENT_OHLC)]
    assert all(d.dlq_topic == "dlq.md.bars" and d.error for d in bus.dead_letters)
    _schema, kept = TopicCodec().decode("md.bars", bus.dead_letters[1].payload)  # the row, as a BarClosed
    assert kept["symbol"] == "KO" and kept["ts_event"] == T0 + DAY
    assert source.quality.gaps["KO"] == 1


def test_without_a_publisher_rejects_are_kept_on_the_source() -> None:
    rows = [good(T0), RawBar(T0 + DAY, 10, 11, 9, -1.0, 1)]
    source = BarReplaySource(IngestSettings(), streams=[SymbolStream("KO", "1d", True, iter(rows))])
    published = list(source.records())
    assert [t for t, _, _ in published].count("md.bars") == 1
    assert [(r.topic, r.key, r.reason) for r in source.rejects.rejected] == [("md.bars", "KO", NON_POSITIVE_PRICE)]


def test_real_vix_holidays_go_to_the_dead_letter_topic(collect) -> None:
    source = BarReplaySource(IngestSettings(datasets=("VIX",), start="2014-01-01", end="2014-03-31"), collect)
    bars = [r for t, _, r in source.records() if t == "md.bars"]
    reasons = {(topic, key, reason) for topic, _, reason, key, _ in collect.dead}
    assert reasons == {("md.bars", "VIX", NAN)}
    dead_days = sorted(payload["ts_event"] for _, payload, *_ in collect.dead)
    assert ns("2014-01-20") in dead_days and ns("2014-02-17") in dead_days  # MLK day, Presidents' Day
    assert all(not math.isnan(b["close"]) for b in bars)
