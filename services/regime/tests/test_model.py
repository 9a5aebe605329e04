"""The HMM: canonical volatility order of states, labels, filtered probabilities, warm-started refits."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
from quorum_regime.model import (
    FittedRegimeModel,
    HmmParams,
    _warm_hmm,
    fit_regime_model,
    full_covars,
    state_labels,
)
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


def hmmlearn_filtered(model: FittedRegimeModel, features: np.ndarray) -> np.ndarray:
    """The old computation: the last row of hmmlearn's ``predict_proba`` on ``features``, canonical order.

    Its scaled forward-backward multiplies lattices that hold 0 and inf in some earlier rows of these long sequences
    (NumPy warns: invalid value in multiply); the last row, compared here, stays finite."""
    with np.errstate(invalid="ignore"):
        posterior = model.hmm.predict_proba((features - model.center) / model.scale)[-1][model.order]
    return posterior / posterior.sum()


def with_third_column(x: np.ndarray, seed: int = 5) -> np.ndarray:
    """``x`` and a VIX-like column that tracks its volatility column."""
    noise = np.random.default_rng(seed).normal(0.0, 1.0, len(x))
    return np.column_stack([x, 100.0 * x[:, 1] + noise])


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical", "tied"])
@pytest.mark.parametrize("columns", [2, 3])
def test_filter_steps_equal_hmmlearn_predict_proba_row_by_row(covariance_type: str, columns: int) -> None:
    x = two_regimes() if columns == 2 else with_third_column(two_regimes())
    model = fit_regime_model(x[:300], HmmParams(3, covariance_type, 50, 1e-4, 7), 1, columns == 3)
    assert model is not None
    flt = model.filter_over(x[:1])
    np.testing.assert_allclose(flt.probabilities, hmmlearn_filtered(model, x[:1]), rtol=0, atol=1e-9)
    for t in range(1, len(x)):  # rows after the fit window too: the filter never looks at them early
        np.testing.assert_allclose(flt.step(x[t]), hmmlearn_filtered(model, x[: t + 1]), rtol=0, atol=1e-9)
    np.testing.assert_allclose(model.filter_over(x).probabilities, flt.probabilities, rtol=0, atol=1e-12)


def test_the_filter_of_a_fit_starts_at_the_last_row_of_its_window() -> None:
    x = two_regimes()
    model = fit_regime_model(x[:300], HmmParams(3, "full", 50, 1e-4, 7), 1, False)
    assert model is not None
    flt = model.filter()
    np.testing.assert_allclose(flt.probabilities, hmmlearn_filtered(model, x[:300]), rtol=0, atol=1e-9)
    for t in range(300, 320):
        np.testing.assert_allclose(flt.step(x[t]), hmmlearn_filtered(model, x[: t + 1]), rtol=0, atol=1e-9)
    assert model.filter().probabilities == pytest.approx(hmmlearn_filtered(model, x[:300]))  # a fresh copy each time


def test_filter_on_real_spx_and_vix_rows_equals_predict_proba(real_features: np.ndarray) -> None:
    x = real_features[2246:2246 + 900]  # from the first row with a VIX value (January 2014)
    assert not np.isnan(x).any()
    model = fit_regime_model(x[:756], HmmParams(3, "full", 100, 1e-4, 7, 2.0), 1, True)
    assert model is not None and model.uses_vix and model.n_features == 3
    flt = model.filter_over(x[:1])
    for t in range(1, len(x)):
        probs = flt.step(x[t])
        if t % 7 == 0 or t >= 750:
            np.testing.assert_allclose(probs, hmmlearn_filtered(model, x[: t + 1]), rtol=0, atol=1e-9)
    np.testing.assert_allclose(model.filter().probabilities, hmmlearn_filtered(model, x[:756]), rtol=0, atol=1e-9)


def test_filter_refuses_rows_of_another_width_or_with_nan() -> None:
    x = two_regimes()
    model = fit_regime_model(x, HmmParams(2, "full", 50, 1e-4, 7), 1, False)
    assert model is not None
    flt = model.filter()
    before = flt.probabilities
    for bad in (np.array([0.0, 0.1, 20.0]), np.array([0.0, np.nan]), np.array([np.inf, 0.1])):
        with pytest.raises(ValueError):
            flt.step(bad)
    np.testing.assert_array_equal(flt.probabilities, before)
    with pytest.raises(ValueError):
        model.probabilities(np.vstack([x[:10], [np.nan, 0.1]]))


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical", "tied"])
def test_warm_start_maps_the_previous_gaussians_into_the_new_scaling(covariance_type: str) -> None:
    x = two_regimes()
    params = HmmParams(2, covariance_type, 50, 1e-4, 7)
    prev = fit_regime_model(x[:300], params, 1, False)
    assert prev is not None
    new = x[150:]
    center, scale = new.mean(axis=0), new.std(axis=0)
    hmm = _warm_hmm(prev, center, scale, params)
    # In the units of the features, the Gaussians are the previous ones.
    np.testing.assert_allclose(hmm.means_ * scale + center, prev.hmm.means_ * prev.scale + prev.center)
    mapped = full_covars(prev.hmm) * np.outer(prev.scale / scale, prev.scale / scale)
    if covariance_type == "spherical":  # one variance per state: the mean of the mapped ones
        np.testing.assert_allclose(full_covars(hmm), np.diagonal(mapped, axis1=1, axis2=2).mean(axis=1)[:, None, None]
                                   * np.eye(2))
    else:
        np.testing.assert_allclose(full_covars(hmm) * np.outer(scale, scale),
                                   full_covars(prev.hmm) * np.outer(prev.scale, prev.scale))
    np.testing.assert_allclose(hmm.startprob_, 0.5)
    assert np.all(hmm.transmat_ > 0) and hmm.transmat_.sum(axis=1) == pytest.approx(1.0)
    assert hmm.init_params == ""
    refit = fit_regime_model(new, params, 2, False, previous=prev)
    assert refit is not None and refit.warm_started and refit.labels == ("TRENDING", "HIGH_VOL")


def rolling_windows(features: np.ndarray, first_end: int, count: int, window: int = 756, every: int = 21
                    ) -> list[np.ndarray]:
    """``count`` rolling windows of ``window`` rows, the first ending at row ``first_end``, ``every`` rows apart."""
    return [features[end - window:end] for end in range(first_end, first_end + every * count, every)]


def test_warm_refits_on_real_data_take_fewer_em_iterations_and_keep_the_labelling(real_features) -> None:
    params = HmmParams(3, "full", 100, 1e-4, 7, 2.0)
    windows = rolling_windows(real_features[:, :2], first_end=800, count=6)  # 2005-2008, no VIX yet
    previous = fit_regime_model(windows[0], params, 0, False)
    assert previous is not None and not previous.warm_started
    warm_iters, cold_iters = [], []
    for i, window in enumerate(windows[1:], start=1):
        warm = fit_regime_model(window, params, i, False, previous=previous)
        cold = fit_regime_model(window, params, i, False)
        assert warm is not None and cold is not None
        assert warm.warm_started and not cold.warm_started
        warm_iters.append(warm.hmm.monitor_.iter)
        cold_iters.append(cold.hmm.monitor_.iter)
        assert warm.labels[0] == "TRENDING"
        vol = warm.hmm.means_[warm.order, 1] * warm.scale[1] + warm.center[1]
        assert np.all(np.diff(vol) > 0), "canonical order: ascending realised volatility"
        assert np.isfinite(warm.filter().probabilities).all()
        previous = warm
    assert sum(warm_iters) < sum(cold_iters), (warm_iters, cold_iters)
    assert np.median(warm_iters) < np.median(cold_iters), (warm_iters, cold_iters)


def test_warm_start_falls_back_to_the_cold_start(real_features) -> None:
    params = HmmParams(3, "full", 100, 1e-4, 7, 2.0)
    with_vix = real_features[2246:2246 + 300]
    without = fit_regime_model(with_vix[:, :2], params, 0, False)
    assert without is not None
    cold = fit_regime_model(with_vix, params, 1, True)
    # The VIX appeared: the previous model has two columns, the new window three.
    after_vix = fit_regime_model(with_vix, params, 1, True, previous=without)
    assert after_vix is not None and not after_vix.warm_started
    np.testing.assert_array_equal(after_vix.hmm.means_, cold.hmm.means_)
    # A previous model whose Gaussians are broken: the warm fit degenerates, the cold one is used.
    broken_hmm = copy.deepcopy(without.hmm)
    broken_hmm.means_ = np.full_like(broken_hmm.means_, np.nan)
    broken = dataclasses.replace(without, hmm=broken_hmm)
    refit = fit_regime_model(with_vix[:, :2], params, 1, False, previous=broken)
    reference = fit_regime_model(with_vix[:, :2], params, 1, False)
    assert refit is not None and not refit.warm_started
    np.testing.assert_array_equal(refit.hmm.means_, reference.hmm.means_)


def test_warm_fit_is_deterministic(real_features) -> None:
    params = HmmParams(3, "full", 100, 1e-4, 7, 2.0)
    first, second = rolling_windows(real_features[:, :2], first_end=1000, count=2)
    previous = fit_regime_model(first, params, 0, False)
    a, b = (fit_regime_model(second, params, 1, False, previous=previous) for _ in range(2))
    assert a is not None and b is not None and a.warm_started
    np.testing.assert_array_equal(a.hmm.means_, b.hmm.means_)
    np.testing.assert_array_equal(a.filter().probabilities, b.filter().probabilities)


def test_a_scaled_fit_that_underflows_is_redone_in_log_space(real_features) -> None:
    params = HmmParams(2, "full", 50, 1e-4, 7, 2.0)
    window = real_features[1000:1300, :2]
    previous = fit_regime_model(window, params, 0, False)
    assert previous is not None
    # Warm start from Gaussians a thousandth as wide, and a row far from them: the scaled forward pass underflows.
    narrow = copy.deepcopy(previous.hmm)
    narrow.covars_ = previous.hmm.covars_ * 1e-3
    narrow_previous = dataclasses.replace(previous, hmm=narrow)
    shocked = window.copy()
    shocked[150] = window.mean(axis=0) + 12 * window.std(axis=0)
    refit = fit_regime_model(shocked, params, 1, False, previous=narrow_previous)
    in_log = fit_regime_model(shocked, dataclasses.replace(params, implementation="log"), 1, False,
                              previous=narrow_previous)
    assert refit is not None and in_log is not None
    assert refit.warm_started, "the warm fit is redone in log space, not dropped for the cold start"
    assert refit.hmm.implementation == "log"
    np.testing.assert_array_equal(refit.hmm.means_, in_log.hmm.means_)


def test_the_scaled_and_the_log_space_fits_agree(real_features) -> None:
    window = real_features[2246:2246 + 756]  # SPX and VIX rows, 2014-2016
    scaled = fit_regime_model(window, HmmParams(3, "full", 100, 1e-4, 7, 2.0), 1, True)
    logged = fit_regime_model(window, HmmParams(3, "full", 100, 1e-4, 7, 2.0, "log"), 1, True)
    assert scaled is not None and logged is not None
    assert scaled.hmm.implementation == "scaling" and scaled.labels == logged.labels
    assert scaled.hmm.monitor_.iter == logged.hmm.monitor_.iter
    np.testing.assert_allclose(scaled.hmm.means_, logged.hmm.means_, rtol=0, atol=1e-9)
    np.testing.assert_allclose(scaled.filter().probabilities, logged.filter().probabilities, rtol=0, atol=1e-9)
