"""Settings of the critic service (environment variables ``QUORUM_*``)."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field, field_validator, model_validator
from quorum_common.runtime.config import ServiceSettings

SCALE_SUFFIX = "_scale"


class CriticSettings(ServiceSettings):
    """What the critic measures and when it tightens limits."""

    service_name: str = "critic"
    portfolio_id: str | None = Field(None, description="Portfolio reviewed; None: the first one seen.")
    desk: str = Field("desk", min_length=1, description="Desk addressed by control commands (their key).")
    regime_scope: str = Field("market", min_length=1, description="Scope of the regime.state records followed.")
    tighten_on_labels: tuple[Literal["TRENDING", "MEAN_REVERTING", "HIGH_VOL", "CRISIS"], ...] = Field(
        ("HIGH_VOL", "CRISIS"), min_length=1, description="Regime labels whose arrival tightens limits.")
    soft_drawdown_fraction: float = Field(0.7, gt=0, lt=1, description="Soft drawdown limit as a fraction of the "
                                          "mandate's max_drawdown; crossing it tightens limits.")
    default_max_drawdown: float | None = Field(None, gt=0, lt=1, description="max_drawdown used until a mandate "
                                               "arrives; None: no soft limit before the mandate.")
    tighten_factors: dict[str, float] = Field(
        {"max_position_weight_scale": 0.5, "max_gross_exposure_scale": 0.75},
        min_length=1, description="Per limit scale, the factor applied at each tightening (0 < factor < 1).")
    min_limit_scale: float = Field(0.5, gt=0, le=1, description="Floor of every limit scale: the critic alone never "
                                   "cuts a limit below this fraction of the mandate's (no person loosens them in a "
                                   "backtest; the portfolio's drawdown and volatility scales do the rest).")
    trade_from: date | None = Field(
        None, description="First date (UTC) the desk trades (the portfolio's trade_from). Before it the critic follows "
        "the regime without tightening, so a warm-up's history tightens nothing; the first regime record from this "
        "date tightens once when its label is one of tighten_on_labels (the desk starts trading in it). None: the "
        "desk trades from the first record.")
    sharpe_window: int = Field(63, ge=3, description="Bar returns in the rolling Sharpe ratio.")
    sharpe_min_periods: int = Field(20, ge=2, description="Returns needed before the Sharpe ratio is reported.")
    periods_per_year: float = Field(252.0, gt=0, description="Annualisation factor of the Sharpe ratio.")
    report_tick: Literal["DAY_END", "WEEK_END", "MONTH_END", "QUARTER_END", "YEAR_END"] = Field(
        "MONTH_END", description="sys.clock tick that publishes a critic report.")
    slippage_alert_bps: float = Field(10.0, ge=0, description="Mean slippage above which the report recommends "
                                      "a slower execution algorithm.")
    decision_cache: int = Field(4_000, ge=100, description="Cache entries of the decisions remembered for tracing "
                                "fills back (two per decision: its id and its event id), newest kept. A fill names "
                                "a decision of the last session or few, so 2,000 decisions (about 100 sessions of "
                                "the default desk) lose none; the cache is most of the critic's checkpoint "
                                "(20,000 entries made it 0.96 MB, 4,000 0.31 MB, with the same reports).")

    @field_validator("tighten_factors")
    @classmethod
    def _factors_tighten(cls, factors: dict[str, float]) -> dict[str, float]:
        for name, factor in factors.items():
            if not name.endswith(SCALE_SUFFIX) or name == SCALE_SUFFIX:
                raise ValueError(f"limit {name!r} must be a <limit>{SCALE_SUFFIX} name")
            if not 0 < factor < 1:
                raise ValueError(f"factor of {name} must be in (0, 1): {factor}")
        return factors

    @model_validator(mode="after")
    def _min_periods_within_window(self) -> CriticSettings:
        if self.sharpe_min_periods > self.sharpe_window:
            raise ValueError("sharpe_min_periods must not exceed sharpe_window")
        return self
