"""The EMA-crossover momentum agent."""

from __future__ import annotations

import pytest
from quorum_alpha.config import AlphaSettings
from quorum_alpha.engine import AlphaEngine
from quorum_common.bus.message import Message
from quorum_common.engine import envelope
from quorum_common.runtime.config import ConfigError, load_settings


class Collect:
    def __init__(self) -> None:
        self.out: list[dict] = []

    def publish(self, topic: str, record: dict, *, key: str | None = None) -> None:
        self.out.append(record)


def feed(engine: AlphaEngine, closes: list[float]) -> None:
    for i, close in enumerate(closes):
        rec = {**envelope(i, "bar"), "symbol": "AAA", "close": close, "interval": "1d"}
        engine.on_message(Message("md.bars", "AAA", rec, "quorum.v1.BarClosed"))


def test_rising_prices_give_positive_scores_after_warm_up() -> None:
    pub = Collect()
    engine = AlphaEngine(AlphaSettings(ema_fast_span=3, ema_slow_span=6), pub)
    feed(engine, [100 + i for i in range(20)])
    assert len(pub.out) == 20 - 6 + 1
    assert all(0 < s["score"] <= 1 for s in pub.out)
    assert pub.out[-1]["inputs"]["ema_fast"] > pub.out[-1]["inputs"]["ema_slow"]


def test_falling_prices_give_negative_scores() -> None:
    pub = Collect()
    feed(AlphaEngine(AlphaSettings(ema_fast_span=3, ema_slow_span=6), pub), [100 - i for i in range(20)])
    assert all(-1 <= s["score"] < 0 for s in pub.out)


def test_fast_span_must_be_below_slow_span(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUORUM_EMA_FAST_SPAN", "30")
    with pytest.raises(ConfigError, match="ema_fast_span"):
        load_settings(AlphaSettings)
