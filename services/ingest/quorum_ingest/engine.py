"""Bar replay: bundled data sets → checked ``BarClosed`` records and ``sys.clock`` ticks, in event-time order.

For every distinct bar time ``t`` the source yields the period-end ticks of the previous bar time
(when ``t`` opens a new day/week/...), every bar of ``t`` sorted by symbol, then the phase ticks of
``t`` (``BAR_CLOSE`` … ``ROUTE``; see :mod:`quorum_ingest.clock`).

Rejected rows. ``Source.records()`` yields only what is published; a row that fails the checks
(:mod:`quorum_ingest.quality`) is kept in ``source.rejects.rejected`` and, once a publisher is
attached (:meth:`BarReplaySource.attach`), sent at once to ``dlq.md.bars`` through
``Publisher.dead_letter`` with the reason (:class:`~quorum_ingest.rejects.RejectSink`). This keeps
the record stream free of fake topics and works the same on the in-process bus and on Kafka.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from quorum_common.bus.base import Publisher
from quorum_common.engine import Source, SourceItem
from quorum_common.event_dates import day_ns

from quorum_ingest.clock import ClockTicker, bars_with_ticks
from quorum_ingest.config import IngestSettings
from quorum_ingest.datasets import RawBar, dataset_info, frame_rows, load_frames
from quorum_ingest.quality import QualityChecker
from quorum_ingest.records import BARS_TOPIC, bar_record, universe_facts
from quorum_ingest.rejects import RejectSink

__all__ = ["BARS_TOPIC", "BarReplaySource", "SymbolStream"]


@dataclass(frozen=True)
class SymbolStream:
    """The rows of one symbol to check and replay."""

    symbol: str
    interval: str
    adjusted: bool
    rows: Iterator[RawBar]


class BarReplaySource(Source):
    """Merges the configured data sets (or given streams) into one checked, event-time ordered stream."""

    def __init__(self, settings: IngestSettings, publisher: Publisher | None = None,
                 streams: list[SymbolStream] | None = None) -> None:
        self.settings = settings
        self.rejects = RejectSink(publisher)
        self.quality = QualityChecker(settings.max_gap_intervals)
        self.ticker = ClockTicker(settings.calendar)
        self._streams = streams

    def attach(self, publisher: Publisher) -> None:
        """Send rejected rows to ``dlq.md.bars`` through ``publisher`` from now on."""
        self.rejects.attach(publisher)

    def symbol_streams(self) -> list[SymbolStream]:
        """One stream per selected symbol of the selected data sets, windowed by start/end."""
        if self._streams is not None:
            return self._streams
        s = self.settings
        start_ns = None if s.start is None else day_ns(s.start)
        end_ns = None if s.end is None else day_ns(s.end, end_of_day=True)
        streams = []
        for name in s.datasets:
            info = dataset_info(name)
            for symbol, frame in sorted(load_frames(name).items()):
                if s.symbols is None or symbol in s.symbols:
                    streams.append(SymbolStream(symbol, info.interval, info.adjusted,
                                                frame_rows(frame, start_ns, end_ns)))
        return streams

    def _checked(self, stream: SymbolStream) -> Iterator[tuple[int, str, str, dict[str, Any]]]:
        published = 0
        facts = universe_facts(stream.symbol)
        for raw in stream.rows:
            if self.settings.max_bars is not None and published >= self.settings.max_bars:
                return
            record = bar_record(stream.symbol, stream.interval, raw, facts, adjusted=stream.adjusted)
            verdict = self.quality.check(stream.symbol, stream.interval, raw)
            if verdict.reason is not None:
                self.rejects.reject(BARS_TOPIC, stream.symbol, verdict.reason, verdict.detail, record)
                continue
            published += 1
            yield raw.ts_ns, stream.symbol, stream.interval, record

    def records(self) -> Iterator[SourceItem]:
        """Period-end ticks, bars of ``t`` by symbol, then the phase ticks of ``t``, for every bar time ``t``."""
        merged = heapq.merge(*(self._checked(s) for s in self.symbol_streams()), key=lambda item: item[:2])
        if not self.settings.clock_ticks:
            return ((BARS_TOPIC, symbol, record) for _ts, symbol, _interval, record in merged)
        return bars_with_ticks(self.ticker, merged)
