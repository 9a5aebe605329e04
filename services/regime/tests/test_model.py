"""The HMM: canonical volatility order of states, labels, filtered probabilities."""

from __future__ import annotations

import numpy as np
import pytest
from quorum_regime.model import HmmParams, fit_regime_model, state_labels
from scipy.stats import multivariate_normal


def two_regimes(seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    calm = np.column_stack([rng.normal(0, 0.005, 150), rng.normal(0.08, 0.005, 150)])
    wild = np.column_stack([rng.normal(0, 0.03, 150), rng.normal(0.45, 0.03, 150)])
    return np.vstack([calm, wild, calm])


@pytest.mark.parametrize(("vols", "n", "expected"), [
    ([0.1, 0.15, 0.5], 3, ("TRENDING", "MEAN_REVERTING", "HIGH_VOL")),
    ([0.1, 0.12, 0.14], 3, ("TRENDING", "MEAN_REVERTING", "MEAN_REVERTING")),
    ([0.1, 0.3, 0.5], 3, ("TRENDING", "HIGH_VOL", "HIGH_VOL")),
    ([0.1, 0.15, 0.3, 0.8], 4, ("TRENDING", "MEAN_REVERTING", "HIGH_VOL", "CRISIS")),
    ([0.1, 0.5], 2, ("TRENDING", "HIGH_VOL")),
    ([0.1, 0.15], 2, ("TRENDING", "MEAN_REVERTING")),
])
def test_labels_follow_volatility_rank_and_ratio_to_the_calmest(vols: list[float], n: int, expected: tuple) -> None:
    assert state_labels(np.array(vols), n, high_vol_min_ratio=2.0) == expected


def test_ratio_one_gives_pure_rank_labels() -> None:
    assert state_labels(np.array([0.1, 0.11, 0.12]), 3, 1.0) == ("TRENDING", "HIGH_VOL", "HIGH_VOL")


def test_states_are_ordered_by_volatility_whatever_the_seed() -> None:
    x = two_regimes()
    for seed in (0, 1, 2, 3):
        model = fit_regime_model(x, HmmParams(2, "full", 100, 1e-4, seed, 2.0), fitted_ts=1, uses_vix=False)
        assert model is not None
        assert model.labels == ("TRENDING", "HIGH_VOL")
        assert model.probabilities(x[:300])[1] > 0.9  # last row volatile
        assert model.probabilities(x)[0] > 0.9  # last row calm
        vol_means = model.hmm.means_[model.order, 1] * model.scale[1] + model.center[1]
        assert vol_means[0] < vol_means[1]


def test_probabilities_are_the_forward_filter_at_the_last_row() -> None:
    x = two_regimes()
    model = fit_regime_model(x, HmmParams(3, "full", 50, 1e-4, 7), fitted_ts=1, uses_vix=False)
    assert model is not None
    hmm, z = model.hmm, (x[:200] - model.center) / model.scale
    alpha = hmm.startprob_.copy()
    for t, row in enumerate(z):  # explicit forward recursion: only rows up to t
        prior = alpha if t == 0 else alpha @ hmm.transmat_
        like = np.array([multivariate_normal(hmm.means_[k], hmm.covars_[k]).pdf(row) for k in range(3)])
        alpha = prior * like / (prior * like).sum()
    p = model.probabilities(x[:200])
    assert p.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(p, alpha[model.order], atol=1e-9)


def test_fit_is_deterministic() -> None:
    x = two_regimes()
    params = HmmParams(3, "full", 100, 1e-4, 7)
    a, b = (fit_regime_model(x, params, 1, False) for _ in range(2))
    assert a is not None and b is not None
    np.testing.assert_array_equal(a.hmm.means_, b.hmm.means_)
    np.testing.assert_array_equal(a.probabilities(x), b.probabilities(x))


def test_a_failing_fit_returns_none() -> None:
    x = np.zeros((3, 2))  # fewer rows than states
    assert fit_regime_model(x, HmmParams(4, "full", 10, 1e-4, 7), 1, False) is None
