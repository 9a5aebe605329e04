"""Real bundled data for the regime tests: the S&P 500 index and the VIX (arch), replayed by the ingest."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from functools import cache
from typing import Any

import numpy as np
import pytest
from quorum_regime.features import FeatureBuilder, feature_matrix


@cache
def _bars(start: str, end: str) -> tuple[dict[str, Any], ...]:
    from quorum_ingest.config import IngestSettings
    from quorum_ingest.engine import BarReplaySource

    settings = IngestSettings(datasets=("SPX", "VIX"), start=date.fromisoformat(start), end=date.fromisoformat(end),
                              clock_ticks=False)
    return tuple(rec for topic, _key, rec in BarReplaySource(settings).records() if topic == "md.bars")


@pytest.fixture(scope="session")
def real_bars() -> Callable[[str, str], tuple[dict[str, Any], ...]]:
    """``(start, end)`` -> the checked SPX and VIX ``md.bars`` records of those dates, in replay order.

    The bundled VIX starts in January 2014.
    """
    return _bars


@pytest.fixture(scope="session")
def real_features(real_bars) -> np.ndarray:
    """Feature rows (return, realised_vol, vix; NaN before the first VIX bar) of 2005-2018, default settings."""
    return feature_matrix(real_bars("2005-01-01", "2018-12-31"), FeatureBuilder(21, 252.0, 256))
