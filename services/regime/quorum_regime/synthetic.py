"""Seeded synthetic market data with a known regime switch (tests and the refit benchmark)."""

from __future__ import annotations

from typing import Any

import numpy as np
from quorum_common.engine import envelope

DAY_NS = 86_400 * 10**9
T0 = 1_600_000_000 * 10**9
"""Event time of day 0."""


def bar_record(symbol: str, day: int, close: float, interval: str = "1d") -> dict[str, Any]:
    """A complete ``BarClosed`` record of ``symbol`` at ``T0 + day`` days."""
    ts = T0 + day * DAY_NS
    return {
        **envelope(ts, "bar", symbol),
        "symbol": symbol, "venue": "INDEX", "interval": interval, "ts_open": ts - DAY_NS,
        "open": close, "high": close, "low": close, "close": close, "volume": 0.0,
        "vwap": None, "trade_count": None, "asset_class": "index", "sector": "Index", "currency": "USD",
        "adjusted": False,
    }


def regime_series(daily_vols: np.ndarray, seed: int) -> tuple[list[float], list[float]]:
    """Index closes with the given daily volatility per bar, and a VIX that tracks it (annualised, in %)."""
    rng = np.random.default_rng(seed)
    n = len(daily_vols)
    closes = 3000.0 * np.exp(np.cumsum(rng.normal(0.0, 1.0, n) * daily_vols))
    vix = 100.0 * daily_vols * np.sqrt(252) * np.exp(rng.normal(0.0, 0.05, n))
    return closes.tolist(), vix.tolist()


def calm_then_volatile(n: int, switch: int, seed: int, calm: float = 0.005, volatile: float = 0.03
                       ) -> tuple[list[float], list[float]]:
    """``regime_series`` with ``calm`` daily volatility before bar ``switch`` and ``volatile`` from it."""
    return regime_series(np.where(np.arange(n) < switch, calm, volatile), seed)


def bar_records(closes: list[float], vix: list[float] | None = None, vix_first: bool = False,
                market: str = "SPX", vix_symbol: str = "VIX") -> list[dict[str, Any]]:
    """Day-by-day bars of the series; per day the market bar first (or the VIX bar, with ``vix_first``)."""
    out: list[dict[str, Any]] = []
    for i, close in enumerate(closes):
        day = [bar_record(market, i, close)] + ([bar_record(vix_symbol, i, vix[i])] if vix is not None else [])
        out += day[::-1] if vix_first else day
    return out
