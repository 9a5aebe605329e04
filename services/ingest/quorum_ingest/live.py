"""Live mode: poll an exchange through ccxt and normalise what it says into desk records.

Each poll reads the exchange's own clock (``fetch_time``), then per symbol:

- OHLCV → ``BarClosed`` on ``md.bars`` for candles that have **closed** by the exchange's time
  (``ts_event`` = candle close = open + interval), each candle once, checked like replayed rows;
  every new bar time gets its ``sys.clock`` ticks (:class:`~quorum_ingest.clock.ClockTicker`);
- ticker → ``QuoteTicked`` on ``md.ticks`` (once per exchange timestamp);
- L2 order book → ``OrderBookUpdated`` on ``md.book`` with spread, mid and book imbalance over the
  top ``book_depth`` levels (once per book sequence).

Event time is always the exchange's (the record's own timestamp, else the exchange clock of the
poll), never this machine's clock; the wall clock only paces the polls. Records of a poll are
yielded in event-time order, and anything older than what was already yielded is dropped, so the
stream keeps the :class:`~quorum_common.engine.Source` contract. Network and exchange errors are
logged and counted; the next poll tries again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

import ccxt
from quorum_common.bus.base import Publisher
from quorum_common.engine import Source, SourceItem
from quorum_common.testing.mock_exchange import point_ccxt_at

from quorum_ingest.clock import ClockTicker, bars_with_ticks
from quorum_ingest.config import IngestSettings
from quorum_ingest.datasets import RawBar
from quorum_ingest.quality import QualityChecker, interval_ns
from quorum_ingest.records import (
    BARS_TOPIC,
    BOOK_TOPIC,
    TICKS_TOPIC,
    InstrumentFacts,
    bar_record,
    book_record,
    quote_record,
)
from quorum_ingest.rejects import RejectSink

log = logging.getLogger(__name__)

BACKFILL_CANDLES = 100
"""Candles asked for on the first poll of a symbol (the closed ones are published)."""
BAD_QUOTE = "bad_quote"
_MS = 1_000_000


def make_exchange(settings: IngestSettings) -> Any:
    """The ccxt client of ``settings`` (spot markets only; hosts replaced by ``exchange_url`` when set)."""
    try:
        cls = getattr(ccxt, settings.exchange_id)
    except AttributeError:
        raise ValueError(f"ccxt has no exchange {settings.exchange_id!r}") from None
    config: dict[str, Any] = {
        "enableRateLimit": True,
        "options": {"defaultType": "spot", "fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False},
    }
    if settings.exchange_api_key is not None and settings.exchange_secret is not None:
        config["apiKey"] = settings.exchange_api_key.get_secret_value()
        config["secret"] = settings.exchange_secret.get_secret_value()
    client = cls(config)
    return point_ccxt_at(client, settings.exchange_url) if settings.exchange_url else client


def live_facts(symbol: str, venue: str) -> InstrumentFacts:
    """Facts of a live crypto pair ``BASE/QUOTE``: asset class crypto, currency the quote asset."""
    quote = symbol.split("/")[1] if "/" in symbol else None
    return InstrumentFacts(venue, "crypto", "Crypto", quote)


class LiveSource(Source):
    """Polls ``settings.live_symbols`` every ``poll_interval_s`` until stopped or ``max_polls`` is reached."""

    def __init__(self, settings: IngestSettings, client: Any | None = None, publisher: Publisher | None = None) -> None:
        self.settings = settings
        self.client = client if client is not None else make_exchange(settings)
        self.venue = str(self.client.id).upper()
        self.rejects = RejectSink(publisher)
        self.quality = QualityChecker(settings.max_gap_intervals)
        self.ticker = ClockTicker(settings.live_calendar)
        self.polls = 0
        self.errors = 0
        self.stale = 0
        self._step_ns = interval_ns(settings.live_timeframe)
        self._last_candle_open: dict[str, int] = {}
        self._last_quote_ts: dict[str, int] = {}
        self._last_book_seq: dict[str, int] = {}
        self._watermark = 0
        self._stop = threading.Event()

    def attach(self, publisher: Publisher) -> None:
        """Send refused records to ``dlq.<topic>`` through ``publisher`` from now on."""
        self.rejects.attach(publisher)

    def stop(self) -> None:
        """Stop after the current poll (wakes a waiting ``records()`` at once)."""
        self._stop.set()

    def records(self) -> Iterator[SourceItem]:
        """Poll, yield the poll's records, wait ``poll_interval_s``; repeat until stopped."""
        while not self._stop.is_set():
            if self.settings.max_polls is not None and self.polls >= self.settings.max_polls:
                return
            if self.polls and self._stop.wait(self.settings.poll_interval_s):
                return
            yield from self.poll_once()

    def poll_once(self) -> list[SourceItem]:
        """One poll of every symbol, as records in non-decreasing event time."""
        self.polls += 1
        try:
            now_ns = int(self.client.fetch_time()) * _MS
        except ccxt.BaseError as exc:
            self._error("fetch_time", exc)
            return []
        bars: list[tuple[int, str, str, dict[str, Any]]] = []
        others: list[SourceItem] = []
        for symbol in self.settings.live_symbols:
            for fetch, out in ((self._bars, bars), (self._quote, others), (self._book, others)):
                try:
                    out.extend(fetch(symbol, now_ns))
                except ccxt.BaseError as exc:
                    self._error(f"{fetch.__name__.strip('_')} {symbol}", exc)
        items = [*bars_with_ticks(self.ticker, sorted(bars, key=lambda b: b[:2])), *others]
        items.sort(key=lambda item: item[2]["ts_event"])  # stable: phases of a bar time keep their order
        fresh = [item for item in items if item[2]["ts_event"] >= self._watermark]
        self.stale += len(items) - len(fresh)
        if fresh:
            self._watermark = fresh[-1][2]["ts_event"]
        return fresh

    def _error(self, what: str, exc: Exception) -> None:
        self.errors += 1
        log.warning("exchange call failed", extra={"call": what, "error": f"{type(exc).__name__}: {exc}"})

    def _bars(self, symbol: str, now_ns: int) -> list[tuple[int, str, str, dict[str, Any]]]:
        last = self._last_candle_open.get(symbol)
        since = None if last is None else (last + self._step_ns) // _MS
        rows = self.client.fetch_ohlcv(symbol, self.settings.live_timeframe, since=since,
                                       limit=None if since is not None else BACKFILL_CANDLES)
        out = []
        facts = live_facts(symbol, self.venue)
        for ts_ms, o, h, low, c, v in (row[:6] for row in rows):
            opened = int(ts_ms) * _MS
            closed = opened + self._step_ns
            if closed > now_ns or (last is not None and opened <= last):
                continue  # still open, or already published
            raw = RawBar(closed, float(o), float(h), float(low), float(c), float(v if v is not None else "nan"))
            record = bar_record(symbol, self.settings.live_timeframe, raw, facts, ts_open=opened)
            verdict = self.quality.check(symbol, self.settings.live_timeframe, raw)
            self._last_candle_open[symbol] = last = opened
            if verdict.reason is not None:
                self.rejects.reject(BARS_TOPIC, symbol, verdict.reason, verdict.detail, record)
                continue
            out.append((closed, symbol, self.settings.live_timeframe, record))
        return out

    def _quote(self, symbol: str, now_ns: int) -> list[SourceItem]:
        t = self.client.fetch_ticker(symbol)
        ts = int(t["timestamp"]) * _MS if t.get("timestamp") is not None else now_ns
        if self._last_quote_ts.get(symbol) == ts:
            return []
        self._last_quote_ts[symbol] = ts
        values = [t.get(k) for k in ("bid", "bidVolume", "ask", "askVolume")]
        last, last_size = t.get("last"), (t.get("info") or {}).get("lastQty")
        record = quote_record(symbol, self.venue, ts, *(float(x) if x is not None else float("nan") for x in values),
                              last=float(last) if last is not None else None,
                              last_size=float(last_size) if last_size is not None else None, asset_class="crypto")
        bid, bid_size, ask, ask_size = (record[k] for k in ("bid_price", "bid_size", "ask_price", "ask_size"))
        if not (bid > 0 and ask > 0 and bid_size >= 0 and ask_size >= 0):  # NaN fails every comparison
            self.rejects.reject(TICKS_TOPIC, symbol, BAD_QUOTE, f"bid {bid} x {bid_size}, ask {ask} x {ask_size}",
                                record)
            return []
        return [(TICKS_TOPIC, symbol, record)]

    def _book(self, symbol: str, now_ns: int) -> list[SourceItem]:
        depth = self.settings.book_depth
        book = self.client.fetch_order_book(symbol, depth)
        seq = book.get("nonce")
        if seq is not None and self._last_book_seq.get(symbol) == seq:
            return []
        if seq is not None:
            self._last_book_seq[symbol] = seq
        ts = int(book["timestamp"]) * _MS if book.get("timestamp") is not None else now_ns
        return [(BOOK_TOPIC, symbol, book_record(symbol, self.venue, ts, book["bids"], book["asks"], depth, seq))]
