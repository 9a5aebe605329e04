"""Time the regime engine over 14 years of synthetic daily bars with the default settings.

``python services/regime/scripts/bench_refit.py`` prints the number of fits, the total fitting
time, the whole replay time (wall clock here is only the benchmark's, never the engine's) and, per
true volatility regime, the share of its bars labelled HIGH_VOL.
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np
from quorum_common.bus.message import Message
from quorum_regime import engine as engine_module
from quorum_regime.config import RegimeSettings
from quorum_regime.engine import RegimeEngine
from quorum_regime.model import FittedRegimeModel
from quorum_regime.synthetic import DAY_NS, T0, bar_records, regime_series

YEARS, BARS_PER_YEAR = 14, 252
VOLS = (0.006, 0.012, 0.03)
"""True daily volatilities of the synthetic regimes (blocks of 63 bars)."""


class _Count:
    def __init__(self) -> None:
        self.labels: dict[int, str] = {}

    def publish(self, topic: str, record: dict, *, key: str | None = None) -> None:
        self.labels[(record["ts_event"] - T0) // DAY_NS] = record["label"]

    def dead_letter(self, *args: object, **kwargs: object) -> None:
        raise AssertionError("no dead letters expected")


def main() -> None:
    """Replay the series and print the timings as JSON."""
    n = YEARS * BARS_PER_YEAR
    vols = np.repeat(np.random.default_rng(5).choice(VOLS, size=n // 63 + 1), 63)[:n]
    closes, vix = regime_series(vols, seed=5)
    fit_seconds = 0.0
    original = engine_module.fit_regime_model

    def timed_fit(*args: Any, **kwargs: Any) -> FittedRegimeModel | None:
        nonlocal fit_seconds
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            fit_seconds += time.perf_counter() - start

    engine_module.fit_regime_model = timed_fit  # count the time spent in fits
    pub = _Count()
    engine = RegimeEngine(RegimeSettings(), pub)
    start = time.perf_counter()
    for rec in bar_records(closes, vix):
        engine.on_message(Message("md.bars", rec["symbol"], rec, "quorum.v1.BarClosed"))
    total = time.perf_counter() - start
    def high_vol_share(true_vol: float) -> float:
        days = [d for d in pub.labels if vols[d] == true_vol]
        return round(sum(pub.labels[d] == "HIGH_VOL" for d in days) / len(days), 3)

    print(json.dumps({"bars": n, "fits": engine.fits, "fit_seconds": round(fit_seconds, 3),
                      "replay_seconds": round(total, 3), "ms_per_fit": round(1000 * fit_seconds / engine.fits, 1),
                      "high_vol_share_by_true_daily_vol": {v: high_vol_share(v) for v in VOLS}}))


if __name__ == "__main__":
    main()
