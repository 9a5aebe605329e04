"""The Gaussian HMM: fitting on a window of feature rows, labelling states by volatility, filtering.

States are put in a canonical order, ascending by their mean realised volatility, so a state index
and its label mean the same thing after every refit (the HMM's own state numbering is arbitrary
and permutes between fits). Labels by rank: 2 states TRENDING, HIGH_VOL; 3 states TRENDING,
MEAN_REVERTING, HIGH_VOL; 4 states add CRISIS for the most volatile. Rank alone would call the
most volatile state of a calm window HIGH_VOL and a volatile state of middle rank MEAN_REVERTING,
so the rank labels are calibrated by the ratio of a state's mean realised volatility to the calmest
state's: below ``high_vol_min_ratio`` a state is at most MEAN_REVERTING, at or above it at least
HIGH_VOL.

Features are standardised with the mean and standard deviation of the fitting window (the same
scaling is applied when filtering), which keeps EM well conditioned whatever the units.
The probabilities at ``t`` are the forward (filtered) posteriors at the last row of a window
ending at ``t``: the posterior of the last row of ``predict_proba`` only depends on rows up to it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from hmmlearn.hmm import GaussianHMM
from threadpoolctl import ThreadpoolController

log = logging.getLogger(__name__)
_THREADPOOLS = ThreadpoolController()
"""Native thread pools, inspected once; the HMM runs single-threaded (oversubscribed, k-means is ~30x slower)."""

MODEL_NAME = "gaussian_hmm"
VOL_COLUMN = 1
"""Column of the realised volatility in a feature matrix (return, realised_vol[, vix])."""

LABELS_BY_STATES: dict[int, tuple[str, ...]] = {
    2: ("TRENDING", "HIGH_VOL"),
    3: ("TRENDING", "MEAN_REVERTING", "HIGH_VOL"),
    4: ("TRENDING", "MEAN_REVERTING", "HIGH_VOL", "CRISIS"),
}


@dataclass(frozen=True)
class HmmParams:
    """How to fit the HMM."""

    n_states: int
    covariance_type: str
    n_iter: int
    tol: float
    random_state: int
    high_vol_min_ratio: float = 1.0


@dataclass(frozen=True)
class FittedRegimeModel:
    """A fitted HMM with its feature scaling and the canonical (volatility) order of its states."""

    hmm: GaussianHMM
    center: np.ndarray
    scale: np.ndarray
    order: np.ndarray
    """``order[k]`` is the HMM state of canonical state ``k`` (ascending volatility)."""
    labels: tuple[str, ...]
    uses_vix: bool
    fitted_ts: int
    window_rows: int

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """Filtered state probabilities (canonical order) at the last row of ``features``."""
        with _THREADPOOLS.limit(limits=1):
            posterior = self.hmm.predict_proba((features - self.center) / self.scale)[-1]
        probs = posterior[self.order]
        return probs / probs.sum()


def state_labels(state_vol: np.ndarray, n_states: int, high_vol_min_ratio: float) -> tuple[str, ...]:
    """Labels of states sorted by ascending mean realised volatility ``state_vol``.

    The calmest state is TRENDING. Any other state is high-volatility when its mean volatility is at
    least ``high_vol_min_ratio`` times the calmest state's: it keeps its rank label when that is
    HIGH_VOL or CRISIS and is promoted to HIGH_VOL otherwise. A state below the ratio is MEAN_REVERTING.
    """
    calmest = max(float(state_vol[0]), 1e-12)
    labels = ["TRENDING"]
    for rank_label, vol in zip(LABELS_BY_STATES[n_states][1:], state_vol[1:], strict=True):
        if vol < high_vol_min_ratio * calmest:
            labels.append("MEAN_REVERTING")
        else:
            labels.append(rank_label if rank_label in ("HIGH_VOL", "CRISIS") else "HIGH_VOL")
    return tuple(labels)


def fit_regime_model(features: np.ndarray, params: HmmParams, fitted_ts: int, uses_vix: bool
                     ) -> FittedRegimeModel | None:
    """Fit the HMM on ``features`` (rows in time order); ``None`` when the fit fails or degenerates."""
    center = features.mean(axis=0)
    scale = features.std(axis=0)
    scale = np.where(scale > 1e-12, scale, 1.0)
    hmm = GaussianHMM(n_components=params.n_states, covariance_type=params.covariance_type, n_iter=params.n_iter,
                      tol=params.tol, random_state=params.random_state)
    try:
        with _THREADPOOLS.limit(limits=1):
            hmm.fit((features - center) / scale)
    except (ValueError, np.linalg.LinAlgError) as exc:
        log.warning("HMM fit failed", extra={"error": str(exc), "rows": len(features)})
        return None
    order = np.argsort(hmm.means_[:, VOL_COLUMN], kind="stable")
    state_vol = hmm.means_[order, VOL_COLUMN] * scale[VOL_COLUMN] + center[VOL_COLUMN]
    labels = state_labels(state_vol, params.n_states, params.high_vol_min_ratio)
    model = FittedRegimeModel(hmm, center, scale, order, labels, uses_vix, fitted_ts, len(features))
    if not np.all(np.isfinite(model.probabilities(features))):
        log.warning("HMM fit degenerate", extra={"rows": len(features)})
        return None
    return model
