"""Regime: the cost of one HMM refit as the embedded desk runs it (3 states, full covariance, a rolling window of
756 rows of S&P 500 return, realised volatility and VIX, cold k-means start), in hmmlearn's ``scaling`` (the default)
and ``log`` implementations, and how far apart their models are."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import date

import numpy as np
from quorum_common.benchjson import Figure, write_result
from quorum_ingest.config import IngestSettings
from quorum_ingest.engine import BarReplaySource
from quorum_regime.config import RegimeSettings
from quorum_regime.features import FeatureBuilder, feature_matrix
from quorum_regime.model import HmmParams, fit_regime_model

WINDOWS = 20
"""Refits timed: the last rolling windows of the desk's refit cadence in 2014-2018 (the bundled VIX starts in 2014)."""


def run() -> None:
    """Fit the same windows in both implementations, alternating, and write ``bench/results/regime.json``."""
    s = RegimeSettings()
    bars = (rec for topic, _key, rec in BarReplaySource(IngestSettings(
        datasets=("SPX", "VIX"), start=date(2014, 1, 1), end=date(2018, 12, 31), clock_ticks=False)).records()
        if topic == "md.bars")
    x = feature_matrix(bars, FeatureBuilder(s.vol_window, s.periods_per_year, s.max_pending_bars))
    x = x[~np.isnan(x).any(axis=1)]
    ends = [len(x) - i * s.refit_every for i in range(WINDOWS)][::-1]
    if ends[0] < s.window_bars:
        raise RuntimeError(f"{len(x)} feature rows: too few for {WINDOWS} windows of {s.window_bars}")
    scaled = HmmParams(s.n_states, s.covariance_type, s.n_iter, s.tol, s.random_state, s.high_vol_min_ratio, "scaling")
    logged = replace(scaled, implementation="log")
    seconds = {"scaling": 0.0, "log": 0.0}
    worst = 0.0
    for end in ends:
        window, models = x[end - s.window_bars:end], {}
        for params in (scaled, logged):
            started = time.perf_counter()
            models[params.implementation] = fit_regime_model(window, params, end, True)
            seconds[params.implementation] += time.perf_counter() - started
        a, b = models["scaling"], models["log"]
        if a is None or b is None or a.labels != b.labels:
            raise RuntimeError(f"the two implementations disagree on the window ending at row {end}")
        worst = max(worst, float(np.abs(a.filter().probabilities - b.filter().probabilities).max()))
    write_result("regime", [
        Figure("one HMM refit, scaling", round(seconds["scaling"] / WINDOWS * 1e3, 2), "ms", None),
        Figure("one HMM refit, log", round(seconds["log"] / WINDOWS * 1e3, 2), "ms", None),
        Figure("largest difference of the two models' state probabilities", worst, "probability", None),
    ], notes=f"{WINDOWS} rolling windows of {s.window_bars} rows (SPX return, realised volatility, VIX; 2014-2018), "
             f"every {s.refit_every} rows as the desk refits, each fitted in both implementations in turn; "
             f"{s.n_states} states, {s.covariance_type} covariance, cold start")


if __name__ == "__main__":
    run()
