"""Replay order, clock ticks, windows, selection, determinism and pacing."""

from __future__ import annotations

import threading
import time
from collections import Counter

from quorum_common.event_dates import day_ns as ns
from quorum_common.event_dates import utc_date
from quorum_common.phases import CALENDAR_OFFSET_NS, PHASE_OFFSETS_NS
from quorum_common.runtime.service import publish_source
from quorum_ingest.config import IngestSettings
from quorum_ingest.datasets import SP500_STOCKS, RawBar
from quorum_ingest.engine import BarReplaySource, SymbolStream

DAY = 86_400 * 1_000_000_000


def phases(items: list) -> list[tuple[str, int]]:
    """(what, ts_event) per item: the symbol for bars, the tick kind for ticks."""
    return [(rec.get("kind") or rec["symbol"], rec["ts_event"]) for _, _, rec in items]


PHASES = list(PHASE_OFFSETS_NS)


def test_each_bar_time_is_bars_by_symbol_then_the_phase_ticks() -> None:
    items = list(BarReplaySource(IngestSettings(datasets=("SP500_STOCKS", "SPX"), max_bars=3)).records())
    t0 = ns("2005-01-03")
    first = phases(items)[:21 + len(PHASES) + 2]
    assert first == [*[(s, t0) for s in sorted((*SP500_STOCKS, "SPX"))],
                     *[(kind, t0 + PHASE_OFFSETS_NS[kind]) for kind in PHASES],
                     ("DAY_END", t0 + CALENDAR_OFFSET_NS), ("AAPL", ns("2005-01-04"))]
    assert PHASES[0] == "BAR_CLOSE" and all(0 < off < CALENDAR_OFFSET_NS for off in PHASE_OFFSETS_NS.values())
    times = [rec["ts_event"] for _, _, rec in items]
    assert times == sorted(times)
    assert Counter(t for t, _, _ in items) == {"md.bars": 21 * 3, "sys.clock": 3 * len(PHASES) + 2}  # 2 DAY_ENDs


def test_period_end_ticks_come_when_the_next_period_starts_stamped_after_the_last_bar() -> None:
    items = list(BarReplaySource(IngestSettings(datasets=("SPX",), start="2007-12-27", end="2008-01-08")).records())
    ticks = [(rec["kind"], rec["ts_event"], rec["session_date"]) for topic, _, rec in items if topic == "sys.clock"
             and rec["kind"] not in (*PHASES, "DAY_END")]
    last_2007 = ns("2007-12-31") + CALENDAR_OFFSET_NS  # Monday: ISO week 1 of 2008, with Jan 2-4
    last_week = ns("2008-01-04") + CALENDAR_OFFSET_NS
    assert ticks == [("WEEK_END", ns("2007-12-28") + CALENDAR_OFFSET_NS, "2007-12-28"),
                     ("MONTH_END", last_2007, "2007-12-31"), ("QUARTER_END", last_2007, "2007-12-31"),
                     ("YEAR_END", last_2007, "2007-12-31"), ("WEEK_END", last_week, "2008-01-04")]
    kinds = [(rec.get("kind"), rec["ts_event"]) for _, _, rec in items]
    year_end = kinds.index(("YEAR_END", last_2007))
    assert kinds[year_end + 1] == (None, ns("2008-01-02"))  # published before the new year's first bar
    day_ends = [rec for t, _, rec in items if t == "sys.clock" and rec["kind"] == "DAY_END"]
    bar_days = sorted({rec["ts_event"] for t, _, rec in items if t == "md.bars"})
    assert [d["ts_event"] for d in day_ends] == [d + CALENDAR_OFFSET_NS for d in bar_days[:-1]]  # none after the last
    sequences = [rec["sequence"] for t, _, rec in items if t == "sys.clock"]
    assert sequences == list(range(1, len(sequences) + 1))


def test_window_and_symbol_selection() -> None:
    settings = IngestSettings(datasets=("SP500_STOCKS", "SPX", "VIX"), symbols=("KO", "PEP", "SPX"),
                              start="2016-03-01", end="2018-12-31")
    bars = [rec for topic, _, rec in BarReplaySource(settings).records() if topic == "md.bars"]
    assert {b["symbol"] for b in bars} == {"KO", "PEP", "SPX"}
    assert min(b["ts_event"] for b in bars) == ns("2016-03-01")
    assert max(b["ts_event"] for b in bars) == ns("2018-12-31")
    spx = {b["ts_event"]: b for b in bars if b["symbol"] == "SPX"}
    assert spx[ns("2018-12-31")]["close"] == 2506.850098
    ko = next(b for b in bars if b["symbol"] == "KO")
    assert (ko["sector"], ko["asset_class"], ko["adjusted"], ko["volume"]) == ("Consumer Staples", "equity", True, 0.0)
    assert spx[ns("2018-12-31")]["asset_class"] == "index"


def test_clock_ticks_can_be_switched_off() -> None:
    items = list(BarReplaySource(IngestSettings(datasets=("GOOG",), max_bars=20, clock_ticks=False)).records())
    assert [topic for topic, _, _ in items] == ["md.bars"] * 20


def test_max_bars_counts_per_symbol() -> None:
    items = BarReplaySource(IngestSettings(datasets=("SP500_STOCKS",), symbols=("KO", "PEP"), max_bars=7)).records()
    assert Counter(key for topic, key, _ in items if topic == "md.bars") == {"KO": 7, "PEP": 7}


def test_desk_default_is_daily_stocks_indices_and_monthly_bitcoin_2005_to_2018() -> None:
    settings = IngestSettings()
    assert "EURUSD" not in settings.datasets
    bars = [rec for topic, _, rec in BarReplaySource(settings).records() if topic == "md.bars"]
    assert {b["symbol"] for b in bars} == {*SP500_STOCKS, "SPX", "VIX", "BTC-USD"}
    assert {b["interval"] for b in bars if b["symbol"] == "BTC-USD"} == {"1M"}
    assert utc_date(bars[0]["ts_event"]).isoformat() == "2005-01-03"
    assert utc_date(bars[-1]["ts_event"]).isoformat() == "2018-12-31"


def test_hourly_eurusd_is_replayed_when_asked_with_hourly_bar_close_ticks() -> None:
    items = list(BarReplaySource(IngestSettings(datasets=("EURUSD",), start=None, end=None, max_bars=30)).records())
    closes = [rec for topic, _, rec in items if topic == "sys.clock" and rec["kind"] == "BAR_CLOSE"]
    assert len(closes) == 30 and {c["interval"] for c in closes} == {"1h"}
    assert sum(1 for topic, _, rec in items if topic == "sys.clock" and rec["kind"] == "DAY_END") >= 1


def test_mixed_intervals_tick_with_the_shortest() -> None:
    day, month = ns("2020-01-31"), ns("2020-01-31")
    streams = [SymbolStream("BTC-USD", "1M", False, iter([RawBar(month, 1, 1, 1, 1, 1)])),
               SymbolStream("KO", "1d", True, iter([RawBar(day, 2, 2, 2, 2, 0)]))]
    items = list(BarReplaySource(IngestSettings(), streams=streams).records())
    assert [k for _, k, _ in items[:2]] == ["BTC-USD", "KO"]  # one bar time, by symbol
    assert items[2][2]["kind"] == "BAR_CLOSE" and items[2][2]["interval"] == "1d"


def test_replay_round_trips_through_the_bus_and_is_deterministic(run_on_bus) -> None:
    settings = IngestSettings(datasets=("SP500_STOCKS", "SPX", "BTCUSD"), start="2012-01-01", end="2012-03-31")
    bus, first = run_on_bus(BarReplaySource(settings))
    _, second = run_on_bus(BarReplaySource(settings))
    assert bus.dead_letters == [] and len(first) > 1000
    assert [(m.topic, m.key, m.value) for m in first] == [(m.topic, m.key, m.value) for m in second]
    assert len({m.value["event_id"] for m in first}) == len(first)
    assert all(m.key == (m.value["symbol"] if m.topic == "md.bars" else "XNYS") for m in first)


def test_paced_replay_follows_event_time(collect) -> None:
    streams = [SymbolStream("KO", "1d", True, iter([RawBar(ns("2020-01-06") + i * DAY, 2, 2, 2, 2, 0)
                                                    for i in range(3)]))]
    source = BarReplaySource(IngestSettings(), streams=streams)
    speed = 2 * DAY / 1e9 / 0.3  # two days of event time in 0.3 s
    started = time.monotonic()
    count = publish_source(source, collect, threading.Event(), speed=speed)
    elapsed = time.monotonic() - started
    assert count == len(collect.published) == 3 + 3 * len(PHASES) + 2
    assert 0.28 <= elapsed < 5.0  # paced: not as fast as possible


def test_the_pace_starts_at_the_first_record_not_while_the_data_loads(collect) -> None:
    class SlowToLoad(BarReplaySource):
        def records(self):
            time.sleep(0.4)  # loading the data sets
            yield from super().records()

    streams = [SymbolStream("KO", "1d", True, iter([RawBar(ns("2020-01-06") + i * DAY, 2, 2, 2, 2, 0)
                                                    for i in range(3)]))]
    speed = 2 * DAY / 1e9 / 0.3  # two days of event time in 0.3 s
    stamps: list[float] = []

    class Stamp(type(collect)):
        def publish(self, topic: str, record: dict, *, key: str | None = None) -> None:
            stamps.append(time.monotonic())
            super().publish(topic, record, key=key)

    publish_source(SlowToLoad(IngestSettings(), streams=streams), Stamp(), threading.Event(), speed=speed)
    assert stamps[-1] - stamps[0] >= 0.28  # no burst to catch up with the time spent loading
