"""The order-book imbalance agent."""

from __future__ import annotations

import pytest
from quorum_alpha.app import SPEC
from quorum_alpha.config import AlphaSettings
from quorum_alpha.engine import AlphaEngine
from quorum_common.bus.inprocess import InProcessBus
from quorum_common.bus.message import Message
from quorum_common.engine import envelope
from quorum_common.runtime.service import wire_inprocess

SETTINGS = AlphaSettings(agents=("book",), book_levels=2, book_ema_span=3)


def book(kit, i: int, bids: list[tuple[float, float]], asks: list[tuple[float, float]], symbol: str = "AAA") -> dict:
    ts = kit.T0 + i * 1_000_000
    level = lambda p, s: {"price": p, "size": s, "order_count": None}  # noqa: E731
    return {**envelope(ts, "book", symbol), "symbol": symbol, "venue": "TEST",
            "bids": [level(p, s) for p, s in bids], "asks": [level(p, s) for p, s in asks], "depth": 5,
            "spread": None, "mid": None, "book_imbalance": None, "is_snapshot": True, "sequence": i}


def feed(settings: AlphaSettings, books: list[dict], kit) -> tuple[list[dict], list]:
    pub = kit.Collect()
    engine = AlphaEngine(settings, pub)
    for b in books:
        engine.on_message(Message("md.book", b["symbol"], b, "quorum.v1.OrderBookUpdated"))
    return pub.out, pub.dead


def test_bid_heavy_book_is_positive_and_only_the_top_levels_count(kit) -> None:
    bids, asks = [(99.0, 30.0), (98.0, 10.0), (97.0, 1000.0)], [(101.0, 10.0), (102.0, 0.0)]
    out, _ = feed(SETTINGS, [book(kit, 0, bids, asks)], kit)
    assert out[0]["score"] == pytest.approx((40 - 10) / 50) and out[0]["strategy"] == "OTHER"
    assert out[0]["inputs"]["bid_size"] == 40.0 and "bid-heavy" in out[0]["reason"]
    assert out[0]["confidence"] == pytest.approx(1 / 3) and out[0]["interval"] is None


def test_imbalance_is_smoothed_by_an_ema(kit) -> None:
    heavy_ask = [book(kit, i, [(99.0, 10.0)], [(101.0, 30.0)]) for i in range(1, 4)]
    out, _ = feed(SETTINGS, [book(kit, 0, [(99.0, 30.0)], [(101.0, 10.0)]), *heavy_ask], kit)
    scores = [s["score"] for s in out]
    assert scores[0] == pytest.approx(0.5) and scores[1] == pytest.approx(0.5 + 0.5 * (-0.5 - 0.5))
    assert scores == sorted(scores, reverse=True) and scores[-1] < 0 and out[-1]["confidence"] == 1.0


def test_empty_old_and_untradable_books_give_no_signal(kit) -> None:
    books = [book(kit, 5, [(99.0, 1.0)], [(101.0, 1.0)]), book(kit, 4, [(99.0, 5.0)], [(101.0, 1.0)]),
             book(kit, 6, [], []), book(kit, 7, [(99.0, 1.0)], [(101.0, 1.0)], symbol="SPX")]
    out, dead = feed(SETTINGS, books, kit)
    assert len(out) == 1 and dead == []


@pytest.mark.parametrize(("bids", "asks", "why"), [
    ([(101.0, 1.0)], [(100.0, 1.0)], "crossed"),
    ([(98.0, 1.0), (99.0, 1.0)], [(101.0, 1.0)], "bids must be best"),
    ([(99.0, 1.0)], [(102.0, 1.0), (101.0, 1.0)], "asks must be best"),
    ([(99.0, -1.0)], [(101.0, 1.0)], "sizes"),
    ([(float("nan"), 1.0)], [(101.0, 1.0)], "prices"),
])
def test_malformed_books_are_dead_lettered(kit, bids, asks, why: str) -> None:
    out, dead = feed(SETTINGS, [book(kit, 0, bids, asks)], kit)
    assert out == [] and dead[0][2] == "invalid book" and why in dead[0][3]


def test_books_are_consumed_only_when_the_agent_is_on(kit) -> None:
    assert AlphaEngine(AlphaSettings(), kit.Collect()).inputs == ("md.bars",)
    assert AlphaEngine(SETTINGS, kit.Collect()).inputs == ("md.bars", "md.book")
    out, dead = feed(SETTINGS.model_copy(update={"agents": ("momentum",)}),
                     [book(kit, 0, [(101.0, 1.0)], [(100.0, 1.0)])], kit)
    assert out == [] and dead == []


def test_book_signals_match_the_schema_over_the_bus(kit) -> None:
    bus = InProcessBus(trace=False)
    got: list[dict] = []
    bus.tap(lambda m: got.append(m.value) if m.topic == "signals.raw" else None)
    wire_inprocess(bus, SPEC, SETTINGS)
    bus.add_source("test", [("md.book", "AAA", book(kit, i, [(99.0, 1.0 + i)], [(101.0, 2.0)])) for i in range(3)])
    bus.run()
    assert len(got) == 3 and bus.dead_letters == [] and len({s["event_id"] for s in got}) == 3
