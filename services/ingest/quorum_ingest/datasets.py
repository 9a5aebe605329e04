"""Real market data that ships inside PyPI packages, read from the installed package files.

- ``GOOG``: Alphabet daily OHLCV 2004–2013 (package ``backtesting``).
- ``BTCUSD``: Bitcoin monthly OHLCV (package ``backtesting``).
- ``EURUSD``: euro–dollar hourly OHLCV (package ``backtesting``).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources


@dataclass(frozen=True)
class DatasetInfo:
    """Where a data set lives and what it is."""

    package: str
    resource: str
    symbol: str
    interval: str
    asset_class: str
    sector: str | None
    venue: str


DATASETS: dict[str, DatasetInfo] = {
    "GOOG": DatasetInfo("backtesting.test", "GOOG.csv", "GOOG", "1d", "equity", "Communication Services", "NASDAQ"),
    "BTCUSD": DatasetInfo("backtesting.test", "BTCUSD.csv", "BTC-USD", "1M", "crypto", None, "COINBASE"),
    "EURUSD": DatasetInfo("backtesting.test", "EURUSD.csv", "EUR-USD", "1h", "fx", None, "FX"),
}


@dataclass(frozen=True)
class RawBar:
    """One row of a data set, before checks."""

    ts_ns: int
    open: float
    high: float
    low: float
    close: float
    volume: float


def _parse_time(text: str) -> int:
    fmt = "%Y-%m-%d %H:%M:%S" if " " in text else "%Y-%m-%d"
    return int(datetime.strptime(text, fmt).replace(tzinfo=UTC).timestamp()) * 1_000_000_000


def read_dataset(name: str) -> Iterator[RawBar]:
    """Rows of the named data set in file order; raise ``KeyError`` naming the valid names."""
    if name not in DATASETS:
        raise KeyError(f"unknown data set {name!r}; known: {', '.join(sorted(DATASETS))}")
    info = DATASETS[name]
    with resources.files(info.package).joinpath(info.resource).open("r", newline="") as fh:
        reader = csv.reader(fh)
        next(reader)  # header: ,Open,High,Low,Close,Volume
        for row in reader:
            yield RawBar(_parse_time(row[0]), *(float(x) for x in row[1:6]))
