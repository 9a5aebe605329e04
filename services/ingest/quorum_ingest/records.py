"""Builders of the market-data records the ingest publishes (``BarClosed``, ``QuoteTicked``, ``OrderBookUpdated``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from quorum_common.engine import envelope
from quorum_common.universe import instrument

from quorum_ingest.datasets import RawBar

BARS_TOPIC, TICKS_TOPIC, BOOK_TOPIC = "md.bars", "md.ticks", "md.book"


@dataclass(frozen=True)
class InstrumentFacts:
    """The static facts a bar carries besides its prices."""

    venue: str
    asset_class: str
    sector: str | None
    currency: str | None


def universe_facts(symbol: str) -> InstrumentFacts:
    """Venue, asset class, sector and currency of ``symbol`` from :mod:`quorum_common.universe`."""
    inst = instrument(symbol)
    return InstrumentFacts(inst.venue, inst.asset_class, inst.sector, inst.currency)


def bar_record(symbol: str, interval: str, raw: RawBar, facts: InstrumentFacts, *, adjusted: bool = False,
               ts_open: int | None = None) -> dict[str, Any]:
    """The ``BarClosed`` record of one row stamped ``raw.ts_ns`` (opened at ``ts_open``, default the same)."""
    return {
        **envelope(raw.ts_ns, "bar", symbol, interval),
        "symbol": symbol,
        "venue": facts.venue,
        "interval": interval,
        "ts_open": raw.ts_ns if ts_open is None else ts_open,
        "open": raw.open,
        "high": raw.high,
        "low": raw.low,
        "close": raw.close,
        "volume": raw.volume,
        "vwap": None,
        "trade_count": None,
        "asset_class": facts.asset_class,
        "sector": facts.sector,
        "currency": facts.currency,
        "adjusted": adjusted,
    }


@dataclass(frozen=True)
class BookStats:
    """Spread, mid and imbalance of a book; None where a side (or both) is empty."""

    spread: float | None
    mid: float | None
    imbalance: float | None


def book_stats(bids: Sequence[Sequence[float]], asks: Sequence[Sequence[float]]) -> BookStats:
    """Stats of ``[price, size]`` levels, best first: imbalance = (bid size − ask size) / (bid size + ask size)."""
    bid_size = sum(level[1] for level in bids)
    ask_size = sum(level[1] for level in asks)
    total = bid_size + ask_size
    imbalance = (bid_size - ask_size) / total if total > 0 else None
    if not bids or not asks:
        return BookStats(None, None, imbalance)
    best_bid, best_ask = bids[0][0], asks[0][0]
    return BookStats(best_ask - best_bid, (best_ask + best_bid) / 2, imbalance)


def book_record(symbol: str, venue: str, ts_ns: int, bids: Sequence[Sequence[float]],
                asks: Sequence[Sequence[float]], depth: int, sequence: int | None) -> dict[str, Any]:
    """The ``OrderBookUpdated`` snapshot of the top ``depth`` levels per side."""
    bids, asks = list(bids)[:depth], list(asks)[:depth]
    stats = book_stats(bids, asks)
    return {
        **envelope(ts_ns, "book", symbol, venue, sequence),
        "symbol": symbol,
        "venue": venue,
        "bids": [{"price": float(p), "size": float(s), "order_count": None} for p, s, *_ in bids],
        "asks": [{"price": float(p), "size": float(s), "order_count": None} for p, s, *_ in asks],
        "depth": depth,
        "spread": stats.spread,
        "mid": stats.mid,
        "book_imbalance": stats.imbalance,
        "is_snapshot": True,
        "sequence": sequence,
    }


def quote_record(symbol: str, venue: str, ts_ns: int, bid: float, bid_size: float, ask: float, ask_size: float,
                 last: float | None, last_size: float | None, asset_class: str | None) -> dict[str, Any]:
    """The ``QuoteTicked`` record of a top-of-book quote with the last trade."""
    return {
        **envelope(ts_ns, "quote", symbol, venue),
        "symbol": symbol,
        "venue": venue,
        "bid_price": bid,
        "bid_size": bid_size,
        "ask_price": ask,
        "ask_size": ask_size,
        "last_price": last,
        "last_size": last_size,
        "aggressor_side": None,
        "sequence": None,
        "asset_class": asset_class,
    }
