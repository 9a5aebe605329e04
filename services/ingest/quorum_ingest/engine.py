"""Bar replay: turns bundled data sets into ``BarClosed`` records in event-time order."""

from __future__ import annotations

import heapq
from collections.abc import Iterator

from quorum_common.engine import Source, SourceItem, envelope

from quorum_ingest.config import IngestSettings
from quorum_ingest.datasets import DATASETS, RawBar, read_dataset

BARS_TOPIC = "md.bars"


def bar_record(name: str, raw: RawBar) -> dict:
    """The ``BarClosed`` record of one row of data set ``name``."""
    info = DATASETS[name]
    return {
        **envelope(raw.ts_ns, "bar", info.symbol, info.interval),
        "symbol": info.symbol,
        "venue": info.venue,
        "interval": info.interval,
        "ts_open": raw.ts_ns,
        "open": raw.open,
        "high": raw.high,
        "low": raw.low,
        "close": raw.close,
        "volume": raw.volume,
        "vwap": None,
        "trade_count": None,
        "asset_class": info.asset_class,
        "sector": info.sector,
        "currency": "USD",
        "adjusted": False,
    }


class BarReplaySource(Source):
    """Merges the configured data sets into one stream ordered by event time."""

    def __init__(self, settings: IngestSettings) -> None:
        self.settings = settings

    def _one(self, name: str) -> Iterator[tuple[int, str, dict]]:
        for i, raw in enumerate(read_dataset(name)):
            if self.settings.max_bars is not None and i >= self.settings.max_bars:
                return
            rec = bar_record(name, raw)
            yield rec["ts_event"], rec["symbol"], rec

    def records(self) -> Iterator[SourceItem]:
        """``(md.bars, symbol, BarClosed)`` for every bar of every data set, oldest first."""
        streams = [self._one(name) for name in self.settings.datasets]
        for _ts, symbol, rec in heapq.merge(*streams, key=lambda item: (item[0], item[1])):
            yield BARS_TOPIC, symbol, rec
