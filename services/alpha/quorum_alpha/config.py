"""Settings of the alpha service (environment variables ``QUORUM_*``)."""

from __future__ import annotations

from pydantic import Field, model_validator
from quorum_common.runtime.config import ServiceSettings


class AlphaSettings(ServiceSettings):
    """Parameters of the signal agents."""

    service_name: str = "alpha"
    ema_fast_span: int = Field(12, ge=2, description="Span (bars) of the fast EMA of the crossover.")
    ema_slow_span: int = Field(26, ge=3, description="Span (bars) of the slow EMA of the crossover.")
    ema_score_scale: float = Field(20.0, gt=0, description="tanh scale from relative EMA gap to score.")

    @model_validator(mode="after")
    def _fast_below_slow(self) -> AlphaSettings:
        if self.ema_fast_span >= self.ema_slow_span:
            raise ValueError("ema_fast_span must be smaller than ema_slow_span")
        return self
