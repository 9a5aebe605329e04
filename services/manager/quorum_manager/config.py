"""Settings of the manager service (environment variables ``QUORUM_*``).

Field names carry a ``manager_`` prefix (except ``mandate_path``) so that they never collide with
other services' fields in the embedded desk's combined settings.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from quorum_common.runtime.config import ServiceSettings

from quorum_manager.mandate import MandateError, load_mandate

DAY_S = 86_400


class ManagerSettings(ServiceSettings):
    """Where the mandate comes from and how the non-signal inputs enter the vote."""

    service_name: str = "manager"
    mandate_path: Path | None = Field(None, description="The user's mandate file (YAML or JSON); default: packaged.")
    manager_regime_scope: str = Field("market", min_length=1, description="regime.state scope whose label is used.")
    manager_sentiment_window_s: int = Field(3 * DAY_S, ge=0, description="How far back scored headlines count.")
    manager_forecast_max_age_s: int = Field(0, ge=0, description="Oldest forecast used, relative to the bar voted on.")
    manager_forecast_score_scale: float = Field(50.0, gt=0, description="tanh scale from forecast return to score.")
    manager_count_absent_inputs: bool = Field(
        False, description="Absent sentiment/forecast count in the sum of weights (the seed's literal formula).")

    @field_validator("mandate_path")
    @classmethod
    def _mandate_valid(cls, v: Path | None) -> Path | None:
        if v is not None:
            try:
                load_mandate(v)
            except MandateError as exc:
                raise ValueError(f"invalid mandate {v}: {exc}") from None
        return v
