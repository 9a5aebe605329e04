"""Shared test helpers of the alpha service: bar builders, a collecting publisher, bus runs."""

from __future__ import annotations

from collections.abc import Iterable
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from quorum_alpha.app import SPEC
from quorum_alpha.config import AlphaSettings
from quorum_alpha.engine import AlphaEngine
from quorum_common.bus.inprocess import InProcessBus
from quorum_common.bus.message import Message
from quorum_common.engine import envelope
from quorum_common.runtime.service import wire_inprocess

T0 = 1_600_000_000_000_000_000
DAY = 86_400_000_000_000


def bar(symbol: str, i: int, close: float, *, high: float | None = None, low: float | None = None,
        volume: float = 1000.0) -> dict[str, Any]:
    """A full ``BarClosed`` record of ``symbol`` for day ``i``."""
    ts = T0 + i * DAY
    return {
        **envelope(ts, "bar", symbol, "1d"), "symbol": symbol, "venue": "TEST", "interval": "1d",
        "ts_open": ts - DAY, "open": close, "high": close if high is None else high,
        "low": close if low is None else low, "close": close, "volume": volume, "vwap": None,
        "trade_count": None, "asset_class": "equity", "sector": None, "currency": "USD", "adjusted": False,
    }


def series(symbol: str, closes: Iterable[float], start: int = 0) -> list[dict[str, Any]]:
    """Bars of ``symbol`` with the given closes, one day apart."""
    return [bar(symbol, start + i, float(c)) for i, c in enumerate(closes)]


def interleave(*legs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Bars of several symbols in event-time order (symbol order within a time)."""
    return sorted((b for leg in legs for b in leg), key=lambda b: (b["ts_event"], b["symbol"]))


def cointegrated_pair(n: int, seed: int, shocks: dict[int, float] | None = None,
                      beta: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """y = 10 + beta·x + e with x a seeded random walk and e uniform in ±0.5 (std ≈ 0.29), plus ``shocks`` to e."""
    rng = np.random.default_rng(seed)
    x = 200.0 + np.cumsum(rng.normal(0.0, 1.0, n))
    e = rng.uniform(-0.5, 0.5, n)
    for i, shock in (shocks or {}).items():
        e[i] = shock
    return 10.0 + beta * x + e, x


class Collect:
    """A publisher that keeps what it is given."""

    def __init__(self) -> None:
        self.out: list[dict[str, Any]] = []
        self.dead: list[tuple[str, Any, str, str]] = []

    def publish(self, topic: str, record: dict[str, Any], *, key: str | None = None) -> None:
        """Keep a published record."""
        assert topic == "signals.raw" and key == record["symbol"]
        self.out.append(record)

    def dead_letter(self, topic: str, payload: Any, reason: str, *, key: str | None = None, error: str = "") -> None:
        """Keep a dead letter."""
        self.dead.append((topic, payload, reason, error))


def run_engine(settings: AlphaSettings, bars: Iterable[dict[str, Any]]) -> tuple[list[dict[str, Any]], AlphaEngine]:
    """Feed ``bars`` straight into an engine; return its signals and the engine."""
    pub = Collect()
    engine = AlphaEngine(settings, pub)
    for b in bars:
        engine.on_message(Message("md.bars", b["symbol"], b, "quorum.v1.BarClosed"))
    return pub.out, engine


def run_bus(settings: AlphaSettings, bars: Iterable[dict[str, Any]]) -> tuple[list[dict[str, Any]], InProcessBus]:
    """Run ``bars`` through the alpha service on the in-process bus (Avro round trip); return the signals."""
    bus = InProcessBus(trace=False)
    signals: list[dict[str, Any]] = []
    bus.tap(lambda m: signals.append(m.value) if m.topic == "signals.raw" else None)
    wire_inprocess(bus, SPEC, settings)
    bus.add_source("test", (("md.bars", b["symbol"], b) for b in bars))
    bus.run()
    return signals, bus


@pytest.fixture
def kit() -> SimpleNamespace:
    """The helpers of this module (test modules cannot import conftest under importlib mode)."""
    return SimpleNamespace(bar=bar, series=series, interleave=interleave, cointegrated_pair=cointegrated_pair,
                           Collect=Collect, run_engine=run_engine, run_bus=run_bus, T0=T0, DAY=DAY)
