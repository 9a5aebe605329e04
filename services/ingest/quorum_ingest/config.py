"""Settings of the ingest service (environment variables ``QUORUM_*``)."""

from __future__ import annotations

from pydantic import Field, field_validator
from quorum_common.runtime.config import ServiceSettings

from quorum_ingest.datasets import DATASETS


class IngestSettings(ServiceSettings):
    """Which bundled data sets to replay and how fast."""

    service_name: str = "ingest"
    datasets: tuple[str, ...] = Field(("GOOG", "BTCUSD"), description="Bundled data sets to replay (see datasets.py).")
    replay_speed: float = Field(0.0, ge=0.0, description="0 replays as fast as possible; N paces at N x event time.")
    max_bars: int | None = Field(None, ge=1, description="Stop after this many bars per data set.")

    @field_validator("datasets")
    @classmethod
    def _known_datasets(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [name for name in value if name not in DATASETS]
        if unknown:
            raise ValueError(f"unknown data sets {unknown}; known: {sorted(DATASETS)}")
        return value
