"""Real market data that ships inside installed PyPI packages, read from the package files (never copied).

- ``SP500_STOCKS``: 20 S&P 500 stocks, daily 1990–2022, from ``skfolio.datasets.load_sp500_dataset()``.
  Adjusted closes only: published with open = high = low = close and **volume unknown** (0.0).
- ``SPX``: S&P 500 index, daily OHLCV 1999–2018, from ``arch.data.sp500.load()`` (unadjusted OHLC).
- ``VIX``: CBOE VIX, daily close 2014–2019, from ``arch.data.vix.load()``; open = high = low = close,
  volume unknown (0.0). Holidays are NaN rows in the file and are rejected by the checks.
- ``GOOG``: Alphabet, daily OHLCV 2004–2013 (``backtesting``'s ``GOOG.csv``).
- ``BTCUSD``: ``BTC-USD``, monthly OHLCV 2012–2024 stamped at the month's last day (``BTCUSD.csv``).
- ``EURUSD``: ``EUR-USD``, hourly OHLCV 2017–2018 (``EURUSD.csv``); hourly, so replayed only when asked.

A bar's time is the row's timestamp in UTC (a daily bar at 00:00 UTC of its trading date). Parsed
frames are cached per process; rows are produced lazily.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

OHLCV = ("open", "high", "low", "close", "volume")


class RawBar(NamedTuple):
    """One row of a data set, before the data-quality checks (a named tuple: cheap to make)."""

    ts_ns: int
    open: float
    high: float
    low: float
    close: float
    volume: float


@dataclass(frozen=True)
class DatasetInfo:
    """What a data set is and how to load it."""

    description: str
    interval: str
    adjusted: bool
    symbols: tuple[str, ...]
    """The symbols the data set holds (checked when it is loaded), so settings are validated without loading."""
    load: Callable[[], dict[str, pd.DataFrame]]
    """Returns ``symbol -> frame`` with columns :data:`OHLCV`, indexed by bar time (UTC, file order)."""


def _ohlcv(frame: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    out = frame.rename(columns=columns)[list(OHLCV)].astype("float64")
    out.index = pd.DatetimeIndex(out.index).tz_localize(None)
    return out


def _close_only(series: pd.Series) -> pd.DataFrame:
    values = series.astype("float64")
    frame = pd.DataFrame({"open": values, "high": values, "low": values, "close": values, "volume": 0.0})
    frame.index = pd.DatetimeIndex(frame.index).tz_localize(None)
    return frame


def _load_sp500_stocks() -> dict[str, pd.DataFrame]:
    from skfolio.datasets import load_sp500_dataset

    prices = load_sp500_dataset()
    return {str(symbol): _close_only(prices[symbol]) for symbol in prices.columns}


def _load_spx() -> dict[str, pd.DataFrame]:
    import arch.data.sp500

    frame = arch.data.sp500.load()
    return {"SPX": _ohlcv(frame, {"Open": "open", "High": "high", "Low": "low", "Close": "close", "Volume": "volume"})}


def _load_vix() -> dict[str, pd.DataFrame]:
    import arch.data.vix

    return {"VIX": _close_only(arch.data.vix.load()["vix"])}


def _backtesting_csv(resource: str, symbol: str) -> Callable[[], dict[str, pd.DataFrame]]:
    def load() -> dict[str, pd.DataFrame]:
        frame = pd.read_csv(_backtesting_dir() / resource, index_col=0, parse_dates=True)
        return {symbol: _ohlcv(frame, {c: c.lower() for c in frame.columns})}

    return load


def _backtesting_dir() -> Path:
    """The folder of backtesting's bundled CSVs, found without importing the (slow) package."""
    spec = importlib.util.find_spec("backtesting")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("package 'backtesting' is not installed")
    return Path(spec.origin).parent / "test"


SP500_STOCKS = ("AAPL", "AMD", "BAC", "BBY", "CVX", "GE", "HD", "JNJ", "JPM", "KO", "LLY", "MRK", "MSFT", "PEP", "PFE",
                "PG", "RRC", "UNH", "WMT", "XOM")

DATASETS: dict[str, DatasetInfo] = {
    "SP500_STOCKS": DatasetInfo("20 S&P 500 stocks, adjusted daily closes (skfolio)", "1d", True, SP500_STOCKS,
                                _load_sp500_stocks),
    "SPX": DatasetInfo("S&P 500 index daily OHLCV (arch)", "1d", False, ("SPX",), _load_spx),
    "VIX": DatasetInfo("CBOE VIX daily close (arch)", "1d", False, ("VIX",), _load_vix),
    "GOOG": DatasetInfo("Alphabet daily OHLCV (backtesting)", "1d", False, ("GOOG",),
                        _backtesting_csv("GOOG.csv", "GOOG")),
    "BTCUSD": DatasetInfo("Bitcoin monthly OHLCV (backtesting)", "1M", False, ("BTC-USD",),
                          _backtesting_csv("BTCUSD.csv", "BTC-USD")),
    "EURUSD": DatasetInfo("Euro-dollar hourly OHLCV (backtesting)", "1h", False, ("EUR-USD",),
                          _backtesting_csv("EURUSD.csv", "EUR-USD")),
}


def dataset_info(name: str) -> DatasetInfo:
    """The data set ``name``; ``KeyError`` names the known ones."""
    try:
        return DATASETS[name]
    except KeyError:
        raise KeyError(f"unknown data set {name!r}; known: {', '.join(sorted(DATASETS))}") from None


@cache
def load_frames(name: str) -> dict[str, pd.DataFrame]:
    """``symbol -> OHLCV frame`` of data set ``name`` (parsed once per process; do not mutate)."""
    info = dataset_info(name)
    frames = info.load()
    if set(frames) != set(info.symbols):
        raise ValueError(f"data set {name} holds {sorted(frames)}, expected {sorted(info.symbols)}")
    return frames


def frame_rows(frame: pd.DataFrame, start_ns: int | None = None, end_ns: int | None = None) -> Iterator[RawBar]:
    """Rows of an OHLCV frame in frame order (not sorted: the checks must see the data as it is), windowed."""
    ts = frame.index.asi8.astype(np.int64) * _ns_per_unit(frame.index)
    keep = np.ones(len(ts), dtype=bool)
    if start_ns is not None:
        keep &= ts >= start_ns
    if end_ns is not None:
        keep &= ts <= end_ns
    values = frame[list(OHLCV)].to_numpy(dtype="float64")[keep]
    for t, row in zip(ts[keep].tolist(), values.tolist(), strict=True):
        yield RawBar(t, *row)


def _ns_per_unit(index: pd.DatetimeIndex) -> int:
    unit = np.datetime_data(index.dtype)[0]
    return {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}[unit]


def read_dataset(name: str, symbol: str | None = None) -> Iterator[RawBar]:
    """Rows of one symbol of data set ``name`` (the only one when ``symbol`` is None), in file order."""
    frames = load_frames(name)
    if symbol is None:
        if len(frames) != 1:
            raise ValueError(f"data set {name} holds {len(frames)} symbols; name one")
        symbol = next(iter(frames))
    return frame_rows(frames[symbol])
