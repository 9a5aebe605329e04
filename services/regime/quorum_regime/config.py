"""Settings of the regime service (environment variables ``QUORUM_*``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from quorum_common.runtime.config import ServiceSettings


class RegimeSettings(ServiceSettings):
    """Parameters of the Gaussian-HMM regime model."""

    service_name: str = "regime"
    market_symbol: str = Field("SPX", min_length=1, description="Symbol whose bars proxy the market.")
    vix_symbol: str | None = Field("VIX", description="Volatility-index symbol used as an extra feature; None: off.")
    interval: str = Field("1d", min_length=1, description="Bar interval the model reads; other intervals are ignored.")
    scope: str = Field("market", min_length=1, description="What the regime describes; the key of regime.state.")
    n_states: int = Field(3, ge=2, le=4, description="Hidden states: 2, 3 or 4 (labels by volatility rank).")
    vol_window: int = Field(21, ge=2, description="Bars of log returns in the realised-volatility feature.")
    periods_per_year: float = Field(252.0, gt=0, description="Annualisation factor of the realised volatility.")
    window_bars: int = Field(756, ge=20, description="Feature rows in the rolling fitting window.")
    window_mode: Literal["rolling", "expanding"] = Field("rolling", description="Fit on the last window_bars rows "
                                                         "or on every row so far.")
    min_fit_bars: int = Field(252, ge=20, description="Feature rows needed before the first fit (warm-up).")
    refit_every: int = Field(21, ge=1, description="Feature rows between two refits.")
    high_vol_min_ratio: float = Field(2.0, ge=1.0, description="Minimum ratio of a state's mean realised volatility "
                                      "to the calmest state's for the HIGH_VOL or CRISIS label (1 = rank only).")
    covariance_type: Literal["full", "diag", "spherical", "tied"] = Field("full", description="HMM covariance.")
    n_iter: int = Field(100, ge=1, description="Maximum EM iterations per fit.")
    tol: float = Field(1e-4, gt=0, description="EM convergence threshold on the log-likelihood gain.")
    random_state: int = Field(7, ge=0, description="Seed of the HMM initialisation (deterministic fits).")
    hmm_implementation: Literal["scaling", "log"] = Field("scaling", description="hmmlearn's forward-backward in "
                                                          "fits: scaling (about 1.6x faster fits, the same models "
                                                          "to within 1e-9; a fit that underflows is redone in log) "
                                                          "or log.")
    warm_start: bool = Field(False, description="Start each refit's EM from the previous model (its Gaussians "
                             "mapped into the new window's scaling): about 4x cheaper fits, but EM then follows "
                             "other local optima and the labels differ (712 of 3,251 on 2005-2018), so it is off "
                             "by default. Cold start also when there is no previous model of the same features "
                             "(the VIX appeared) or a warm fit fails or degenerates.")
    refit_lag_rows: int = Field(0, ge=0, description="Feature rows between a refit's row and the row from "
                                "which its model filters. 0: the refit's own row, which waits for the fit. With 1 "
                                "or more the fit (on the window ending at its row, no look-ahead) runs meanwhile, in "
                                "a worker process when fit_worker is process, the model in force keeps filtering, "
                                "and the new model is then stepped over the rows between: the same results in "
                                "every run mode, and no bar waits for a fit.")
    fit_worker: Literal["inline", "process"] = Field("inline", description="Where a lagged refit runs: inline (at "
                                                     "its row; the embedded desk) or process (a lower-priority "
                                                     "worker process; services over Kafka).")
    max_pending_bars: int = Field(256, ge=1, description="Market bars that may wait for the VIX stream to reach "
                                  "their time (over Kafka the two symbols may be on different partitions) before "
                                  "the oldest is processed with the last VIX value.")

    @model_validator(mode="after")
    def _windows_consistent(self) -> RegimeSettings:
        if self.min_fit_bars > self.window_bars:
            raise ValueError("min_fit_bars must not exceed window_bars")
        if self.min_fit_bars < 5 * self.n_states:
            raise ValueError("min_fit_bars must be at least 5 * n_states")
        if self.refit_lag_rows >= min(self.refit_every, self.min_fit_bars):
            raise ValueError("refit_lag_rows must be less than refit_every (a fit lands before the next one is "
                             "due) and min_fit_bars (the rows it is stepped over are still kept)")
        if self.vix_symbol == self.market_symbol:
            raise ValueError("vix_symbol must differ from market_symbol")
        return self
