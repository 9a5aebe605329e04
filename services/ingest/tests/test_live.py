"""Live mode against the local mock exchange, driven through a real ccxt client."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from quorum_common.phases import PHASE_OFFSETS_NS
from quorum_common.testing.mock_exchange import MockExchange, make_ccxt_client
from quorum_ingest.config import IngestSettings
from quorum_ingest.live import BACKFILL_CANDLES, BAD_QUOTE, LiveSource
from quorum_ingest.records import book_stats

MS = 1_000_000
SYMBOLS = ("BTC/USDT", "ETH/USDT")


@pytest.fixture
def mock():
    with MockExchange(symbols=SYMBOLS, seed=11) as exchange:
        yield exchange


def settings(mock: MockExchange, **kw) -> IngestSettings:
    return IngestSettings(mode="live", exchange_url=mock.url, live_symbols=SYMBOLS, poll_interval_s=0.01, **kw)


def by_topic(items) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for topic, _, rec in items:
        out.setdefault(topic, []).append(rec)
    return out


def test_first_poll_publishes_closed_candles_quotes_and_books_in_event_time(mock: MockExchange) -> None:
    source = LiveSource(settings(mock), client=make_ccxt_client(mock))
    items = source.poll_once()
    got = by_topic(items)
    now_ns = mock.now_ms * MS
    closed = BACKFILL_CANDLES - 1  # the candle opened at "now" is still open
    assert Counter(b["symbol"] for b in got["md.bars"]) == {s: closed for s in SYMBOLS}
    assert max(b["ts_event"] for b in got["md.bars"]) == now_ns  # the candle that closed exactly now
    assert all(b["ts_event"] - b["ts_open"] == 60_000 * MS and b["interval"] == "1m" for b in got["md.bars"])
    last = got["md.bars"][-1]
    row = mock.candle(last["symbol"], "1m", last["ts_open"] // MS)
    assert (last["open"], last["high"], last["low"], last["close"], last["volume"]) == tuple(map(float, row[1:6]))
    assert (last["venue"], last["asset_class"], last["currency"]) == ("BINANCE", "crypto", "USDT")
    assert [q["ts_event"] for q in got["md.ticks"]] == [now_ns, now_ns]  # exchange time, not this machine's
    times = [rec["ts_event"] for _, _, rec in items]
    assert times == sorted(times)
    closes = [c for c in got["sys.clock"] if c["kind"] == "BAR_CLOSE"]
    assert len(closes) == BACKFILL_CANDLES - 1 and {c["calendar"] for c in closes} == {"24x7"}


def test_book_carries_spread_mid_and_imbalance_of_the_top_levels(mock: MockExchange) -> None:
    source = LiveSource(settings(mock, book_depth=5), client=make_ccxt_client(mock))
    book = next(rec for topic, key, rec in source.poll_once() if topic == "md.book" and key == "BTC/USDT")
    bids, asks = mock.book("BTC/USDT", 5)
    bid_vol, ask_vol = sum(float(s) for _, s in bids), sum(float(s) for _, s in asks)
    assert len(book["bids"]) == len(book["asks"]) == book["depth"] == 5
    assert book["spread"] == pytest.approx(float(asks[0][0]) - float(bids[0][0]))
    assert book["mid"] == pytest.approx((float(asks[0][0]) + float(bids[0][0])) / 2)
    assert book["book_imbalance"] == pytest.approx((bid_vol - ask_vol) / (bid_vol + ask_vol))
    assert book["sequence"] is not None


def test_polls_publish_each_candle_quote_and_book_once(mock: MockExchange) -> None:
    source = LiveSource(settings(mock), client=make_ccxt_client(mock))
    source.poll_once()
    assert source.poll_once() == []  # nothing new on the exchange
    mock.advance(125_000)
    got = by_topic(source.poll_once())
    start = mock.now_ms - 125_000
    assert sorted({b["ts_event"] // MS for b in got["md.bars"]}) == [start + 60_000, start + 120_000]
    assert [c["kind"] for c in got["sys.clock"]] == [*PHASE_OFFSETS_NS] * 2
    assert len(got["md.ticks"]) == len(got["md.book"]) == 2


def test_records_round_trip_through_the_bus_and_stop_after_max_polls(mock: MockExchange, run_on_bus) -> None:
    source = LiveSource(settings(mock, max_polls=2))  # the client built from the settings (exchange_url)
    bus, delivered = run_on_bus(source)
    assert source.polls == 2 and source.errors == 0 and bus.dead_letters == []
    assert {m.topic for m in delivered} == {"md.bars", "md.ticks", "md.book", "sys.clock"}
    assert any(r.path == "/api/v3/depth" for r in mock.requests)


def test_stop_ends_a_running_poll_loop(mock: MockExchange) -> None:
    source = LiveSource(settings(mock).model_copy(update={"poll_interval_s": 30.0}), client=make_ccxt_client(mock))
    seen: list[int] = []
    worker = threading.Thread(target=lambda: seen.extend(1 for _ in source.records()))
    worker.start()
    for _ in range(500):  # wait (at most 5 s) for the first poll
        if source.polls:
            break
        worker.join(0.01)
    source.stop()
    worker.join(5)
    assert not worker.is_alive() and source.polls == 1 and seen


def test_an_unreachable_exchange_is_counted_not_fatal(mock: MockExchange) -> None:
    source = LiveSource(settings(mock), client=make_ccxt_client(mock))
    mock.stop()
    assert source.poll_once() == []
    assert source.errors == 1


class BadQuoteClient:
    """A ccxt-like client whose ticker has no bid and whose book is empty."""

    id = "fake"

    def fetch_time(self) -> int:
        return 1_700_000_000_000

    def fetch_ohlcv(self, symbol, timeframe, since=None, limit=None) -> list:
        return []

    def fetch_ticker(self, symbol) -> dict:
        return {"timestamp": 1_700_000_000_000, "bid": None, "bidVolume": 1.0, "ask": 10.0, "askVolume": 1.0,
                "last": 10.0, "info": {}}

    def fetch_order_book(self, symbol, limit=None) -> dict:
        return {"bids": [], "asks": [], "timestamp": None, "nonce": None}


def test_bad_quotes_go_to_the_dead_letter_topic_and_empty_books_have_no_stats(collect) -> None:
    source = LiveSource(IngestSettings(mode="live", live_symbols=("X/USD",)), client=BadQuoteClient(),
                        publisher=collect)
    items = source.poll_once()
    assert [(topic, reason, key) for topic, _, reason, key, _ in collect.dead] == [("md.ticks", BAD_QUOTE, "X/USD")]
    (book,) = [rec for topic, _, rec in items if topic == "md.book"]
    assert (book["spread"], book["mid"], book["book_imbalance"]) == (None, None, None)
    assert book["ts_event"] == 1_700_000_000_000 * MS  # the exchange clock of the poll


def test_book_stats() -> None:
    stats = book_stats([[99.0, 3.0], [98.0, 1.0]], [[101.0, 1.0]])
    assert (stats.spread, stats.mid, stats.imbalance) == (2.0, 100.0, 0.6)
    one_sided = book_stats([[99.0, 2.0]], [])
    assert (one_sided.spread, one_sided.mid, one_sided.imbalance) == (None, None, 1.0)
