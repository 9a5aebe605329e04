"""Rolling Sharpe from snapshots, and the tighten-only limit ratchet."""

from __future__ import annotations

import math
from itertools import pairwise

import numpy as np
import pytest
from quorum_critic.limits import LimitRatchet
from quorum_critic.performance import NavSeries

DAY = 86_400 * 10**9


def test_sharpe_of_bar_returns_matches_numpy() -> None:
    rng = np.random.default_rng(4)
    navs = 1e6 * np.cumprod(1 + rng.normal(0.001, 0.01, 40))
    series = NavSeries(window=30, min_periods=5, periods_per_year=252)
    for i, nav in enumerate(navs):
        series.add(i * DAY, 1.0)  # an earlier snapshot of the same bar time is replaced
        series.add(i * DAY + 2, float(nav))
    returns = np.diff(navs[-31:]) / navs[-31:-1]
    assert series.sharpe() == pytest.approx(returns.mean() / returns.std(ddof=1) * math.sqrt(252))


def test_sharpe_needs_enough_returns_and_some_variance() -> None:
    series = NavSeries(window=10, min_periods=3, periods_per_year=252)
    for i, nav in enumerate([100.0, 101.0, 102.0]):
        series.add(i * DAY, nav)
    assert series.sharpe() is None
    flat = NavSeries(window=10, min_periods=3, periods_per_year=252)
    for i in range(6):
        flat.add(i * DAY, 100.0)
    assert flat.sharpe() is None


def test_ratchet_only_tightens_down_to_its_floor() -> None:
    ratchet = LimitRatchet({"max_position_weight_scale": 0.5, "max_gross_exposure_scale": 0.75}, min_scale=0.2)
    published, scales = [], [dict(ratchet.scales)]
    while (steps := ratchet.tighten(None)) is not None:
        published.append(steps)
        scales.append(dict(ratchet.scales))
    assert published[0] == {"max_gross_exposure": 0.75, "max_position_weight": 0.5}
    assert published[2] == {"max_gross_exposure": 0.75, "max_position_weight": pytest.approx(0.8)}  # 0.25 -> 0.2
    assert all(0 < f <= 1.0 for steps in published for f in steps.values())
    for before, after in pairwise(scales):
        assert all(after[k] <= before[k] <= 1.0 for k in before)
    assert scales[-1] == {"max_gross_exposure_scale": 0.2, "max_position_weight_scale": 0.2}
    for name in ("max_gross_exposure", "max_position_weight"):  # the steps compound to the cumulative scale
        assert math.prod(s.get(name, 1.0) for s in published) == pytest.approx(scales[-1][f"{name}_scale"])
    assert "max_position_weight" not in published[-1]  # a scale already at its floor is not published
    assert ratchet.tighten(None) is None


def test_absolute_limits_follow_the_mandate_but_never_loosen() -> None:
    ratchet = LimitRatchet({"max_position_weight_scale": 0.5, "max_gross_exposure_scale": 0.75}, min_scale=0.1)
    first = ratchet.tighten({"max_position_weight": 0.2, "max_gross_exposure": None})
    assert first == {"max_position_weight": 0.5, "max_gross_exposure": 0.75}
    assert ratchet.report() == {"max_position_weight_scale": 0.5, "max_gross_exposure_scale": 0.75,
                                "max_position_weight": pytest.approx(0.1)}
    looser = ratchet.tighten({"max_position_weight": 0.9, "max_gross_exposure": 1.0})
    assert looser == {"max_position_weight": 0.5, "max_gross_exposure": 0.75}  # a looser mandate never loosens
    report = ratchet.report()
    assert (report["max_position_weight_scale"], report["max_gross_exposure_scale"]) == (0.25, 0.5625)
    assert report["max_position_weight"] == pytest.approx(0.1)  # 0.9 * 0.25 would be looser
    assert report["max_gross_exposure"] == pytest.approx(0.5625)
