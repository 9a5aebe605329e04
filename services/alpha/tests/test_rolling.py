"""The O(1) rolling statistics agree with direct computation."""

from __future__ import annotations

import numpy as np
import pytest
from quorum_alpha.rolling import RollingExtreme, RollingMeanStd


@pytest.mark.parametrize("window", [2, 5, 17])
def test_mean_and_std_match_numpy_at_every_step(window: int) -> None:
    values = np.random.default_rng(7).normal(1000.0, 5.0, 400)
    stats = RollingMeanStd(window)
    for i, v in enumerate(values):
        stats.push(float(v))
        tail = values[max(0, i + 1 - window): i + 1]
        assert stats.count == len(tail)
        assert stats.full == (len(tail) == window)
        assert stats.mean == pytest.approx(tail.mean(), rel=1e-12)
        assert stats.std == pytest.approx(tail.std(), rel=1e-7, abs=1e-9)


def test_reset_replaces_the_window() -> None:
    stats = RollingMeanStd(3)
    for v in (1.0, 2.0, 3.0):
        stats.push(v)
    stats.reset([10.0, 20.0, 30.0, 40.0])
    assert stats.mean == pytest.approx(30.0)
    assert stats.std == pytest.approx(np.std([20.0, 30.0, 40.0]))
    stats.reset([])
    assert stats.count == 0 and stats.std == 0.0


@pytest.mark.parametrize("largest", [True, False])
def test_extreme_matches_the_window(largest: bool) -> None:
    values = np.random.default_rng(11).normal(0.0, 1.0, 300)
    ext = RollingExtreme(10, largest=largest)
    assert np.isnan(ext.value)
    for i, v in enumerate(values):
        ext.push(float(v))
        tail = values[max(0, i - 9): i + 1]
        assert ext.value == (tail.max() if largest else tail.min())
        assert ext.full == (i >= 9)
