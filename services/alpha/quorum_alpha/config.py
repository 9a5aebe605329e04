"""Settings of the alpha service (environment variables ``QUORUM_*``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator
from quorum_common.runtime.config import ServiceSettings

AgentFamily = Literal["momentum", "breakout", "bollinger", "pairs", "book"]
ALL_AGENTS: tuple[AgentFamily, ...] = ("momentum", "breakout", "bollinger", "pairs", "book")
BAR_AGENTS: tuple[AgentFamily, ...] = ("momentum", "breakout", "bollinger", "pairs")


class AlphaSettings(ServiceSettings):
    """Parameters of the signal agents."""

    service_name: str = "alpha"
    agents: tuple[AgentFamily, ...] = Field(
        BAR_AGENTS,
        description="Agent families that run (JSON list of momentum, breakout, bollinger, pairs, book); "
        "md.book is consumed only when book is on.",
    )

    ema_fast_span: int = Field(12, ge=2, description="Span (bars) of the fast EMA of the crossover.")
    ema_slow_span: int = Field(26, ge=3, description="Span (bars) of the slow EMA of the crossover.")
    ema_score_scale: float = Field(20.0, gt=0, description="tanh scale from relative EMA gap to score.")

    breakout_window: int = Field(20, ge=2, description="Bars of the Donchian channel (previous highs and lows).")
    breakout_score_scale: float = Field(
        5.0, gt=0, description="tanh scale from the close's distance beyond the channel (in channel widths) to score."
    )

    bollinger_window: int = Field(20, ge=2, description="Bars of the Bollinger mean and standard deviation.")
    bollinger_k: float = Field(2.0, gt=0, description="Band width in standard deviations; score = -tanh(z / k).")

    pairs: tuple[str, ...] = Field(
        ("KO/PEP",), description="Candidate pairs 'Y/X' (spread = Y - a - b·X), as a JSON list."
    )
    pairs_search: bool = Field(False, description="Also test every same-sector pair of tradable universe symbols.")
    pairs_window: int = Field(252, ge=30, description="Aligned bars of the rolling cointegration window.")
    pairs_test_every: int = Field(21, ge=1, description="Bars between two Engle-Granger tests of a pair.")
    pairs_pvalue: float = Field(
        0.05, gt=0, lt=1, description="Largest Engle-Granger p-value that counts as cointegrated."
    )
    pairs_adf_lags: int | None = Field(
        None, ge=0, description="Fixed ADF lags of the Engle-Granger test; unset: chosen by AIC (slower)."
    )
    pairs_entry_z: float = Field(2.0, gt=0, description="Open a spread position when |z| exceeds this.")
    pairs_exit_z: float = Field(0.5, ge=0, description="Close the position when z has reverted within this of 0.")
    pairs_stop_z: float = Field(3.5, gt=0, description="Stop out when |z| exceeds this; re-arm once |z| < entry.")

    book_levels: int = Field(5, ge=1, description="Levels per side of the order-book imbalance.")
    book_ema_span: int = Field(10, ge=1, description="Span (book updates) of the EMA that smooths the imbalance.")

    @field_validator("pairs")
    @classmethod
    def _pairs_well_formed(cls, pairs: tuple[str, ...]) -> tuple[str, ...]:
        for pair in pairs:
            legs = pair.split("/")
            if len(legs) != 2 or not all(legs) or legs[0] == legs[1]:
                raise ValueError(f"pair {pair!r} must be 'Y/X' with two different symbols")
        return pairs

    @model_validator(mode="after")
    def _consistent(self) -> AlphaSettings:
        if self.ema_fast_span >= self.ema_slow_span:
            raise ValueError("ema_fast_span must be smaller than ema_slow_span")
        if not self.pairs_exit_z < self.pairs_entry_z < self.pairs_stop_z:
            raise ValueError("pairs_exit_z < pairs_entry_z < pairs_stop_z must hold")
        if self.pairs_test_every > self.pairs_window:
            raise ValueError("pairs_test_every must not exceed pairs_window")
        return self

    def pair_legs(self) -> list[tuple[str, str]]:
        """The configured pairs as ``(y, x)`` tuples."""
        return [tuple(p.split("/")) for p in self.pairs]  # type: ignore[misc]
