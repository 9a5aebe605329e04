"""Settings of the ingest service (environment variables ``QUORUM_*``)."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from quorum_common.runtime.config import ServiceSettings

from quorum_ingest.datasets import DATASETS
from quorum_ingest.quality import INTERVAL_NS

DESK_DATASETS = ("SP500_STOCKS", "SPX", "VIX", "BTCUSD")
"""The desk's default replay: the 20 stocks, the S&P 500 index, VIX and monthly bitcoin."""


class IngestSettings(ServiceSettings):
    """What to replay (bundled data sets, window, speed) or which exchange to poll live."""

    service_name: str = "ingest"
    mode: Literal["replay", "live", "standby"] = Field(
        "replay", description="Replay bundled data, poll an exchange, or (standby, lockstep only) publish no data and "
        "release the commands sent to a desk whose replay ended before (`quorum-desk up --no-replay`).")
    # replay
    datasets: tuple[str, ...] = Field(DESK_DATASETS, description="Bundled data sets to replay (see datasets.py).")
    symbols: tuple[str, ...] | None = Field(None, description="Only these symbols of the data sets (None: all).")
    start: date | None = Field(date(2005, 1, 1), description="First bar date replayed (inclusive, UTC).")
    end: date | None = Field(date(2018, 12, 31), description="Last bar date replayed (inclusive, UTC).")
    max_bars: int | None = Field(None, ge=1, description="Stop after this many bars per symbol.")
    replay_speed: float = Field(0.0, ge=0.0, description="0 replays as fast as possible; N paces at N x event time.")
    max_gap_intervals: float = Field(5.0, gt=0, description="A gap above this many bar intervals is a warning.")
    calendar: str = Field("XNYS", min_length=1, description="Calendar of the clock ticks (sys.clock key).")
    clock_ticks: bool = Field(True, description="Publish sys.clock ticks (False: bars only, e.g. a bare bar export).")
    # live
    exchange_id: str = Field("binance", description="ccxt exchange class of live mode.")
    exchange_url: str | None = Field(None, description="Base URL replacing the exchange's hosts (a mock, a proxy).")
    exchange_api_key: SecretStr | None = None
    exchange_secret: SecretStr | None = None
    live_symbols: tuple[str, ...] = Field(("BTC/USDT",), min_length=1, description="ccxt symbols polled live.")
    live_timeframe: str = Field("1m", description="Candle interval polled live (closed candles only).")
    live_calendar: str = Field("24x7", min_length=1, description="Calendar of the live clock ticks.")
    poll_interval_s: float = Field(1.0, gt=0, description="Seconds between two polls of the exchange.")
    book_depth: int = Field(10, ge=1, le=5000, description="Order-book levels per side (imbalance uses them all).")
    max_polls: int | None = Field(None, ge=1, description="Stop live mode after this many polls (None: until stopped).")

    @field_validator("datasets")
    @classmethod
    def _known_datasets(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [name for name in value if name not in DATASETS]
        if unknown:
            raise ValueError(f"unknown data sets {unknown}; known: {sorted(DATASETS)}")
        if not value:
            raise ValueError("at least one data set is needed")
        return value

    @field_validator("live_timeframe")
    @classmethod
    def _known_timeframe(cls, value: str) -> str:
        if value not in INTERVAL_NS:
            raise ValueError(f"unknown timeframe {value!r}; known: {list(INTERVAL_NS)}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> IngestSettings:
        if self.mode == "standby" and not (self.lockstep and self.lockstep_standby):
            raise ValueError("mode: standby publishes no data, so it needs lockstep and lockstep_standby "
                             "(QUORUM_LOCKSTEP=true, QUORUM_LOCKSTEP_STANDBY=true)")
        if self.start is not None and self.end is not None and self.start > self.end:
            raise ValueError(f"start {self.start} is after end {self.end}")
        if self.symbols is not None:
            available = {s for name in self.datasets for s in DATASETS[name].symbols}
            missing = sorted(set(self.symbols) - available)
            if missing:
                raise ValueError(f"symbols {missing} are in none of the data sets {list(self.datasets)}")
        return self
