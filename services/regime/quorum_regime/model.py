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

Filtering. The probabilities at ``t`` are the forward (filtered) posteriors ``P(state_t | rows up to
t)``: the forward recursion ``log a_t = logsumexp_i(log a_{t-1,i} + log A_ij) + log N(x_t; mu_j,
S_j)``, normalised, started from the HMM's start probabilities. A :class:`RegimeFilter` carries it
one row at a time (O(K^2 + K d^2) per row, with the Cholesky factors of the covariances computed once
per fit); the model keeps the filter's state at the last row of its fitting window, so after a fit
the filter goes on from there without replaying the window. This is the last row of hmmlearn's
``predict_proba`` on the same rows (the backward pass is 1 at the last row), without its O(window)
cost per row.

Warm starts. A refit may start EM from the previous model (``previous`` of :func:`fit_regime_model`):
its means and covariances mapped into the new window's scaling, its transition matrix (mixed with
a 1e-3 share of the uniform one, so that no transition is fixed at zero) and uniform start
probabilities; no k-means. Without a compatible previous model (none, or another feature count),
or when the warm fit fails or degenerates, the fit is the cold start (k-means means, ``random_state``
seeded start and transition probabilities). Both are deterministic.

Speed. EM runs hmmlearn's ``scaling`` forward-backward by default (``HmmParams.implementation``): the same
recursions in probability space with a scale per row, about 1.6x faster fits than its ``log`` space on the desk's
windows, the same models to within 1e-9 (tested on real rows; ``bench/regime_bench.py`` measures both). A scaled
pass underflows when a row is far from every state's Gaussian; hmmlearn then raises and the fit is redone from the same
start in ``log`` space.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field

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

WARM_TRANSMAT_MIX = 1e-3
"""Share of the uniform transition matrix mixed into the previous one when a refit starts warm."""
_CHOLESKY_JITTER = 1e-7
"""Added to the diagonal of a covariance whose Cholesky factorisation fails (as hmmlearn's density does)."""


@dataclass(frozen=True)
class HmmParams:
    """How to fit the HMM."""

    n_states: int
    covariance_type: str
    n_iter: int
    tol: float
    random_state: int
    high_vol_min_ratio: float = 1.0
    implementation: str = "scaling"
    """hmmlearn's forward-backward: ``scaling`` (the default; a fit that underflows is redone in ``log``) or ``log``."""


@dataclass(frozen=True)
class ForwardKernel:
    """What the forward recursion needs of a fitted HMM, computed once per fit (HMM state order).

    Only public hmmlearn attributes are read: ``startprob_``, ``transmat_``, ``means_`` and
    ``covars_`` (full matrices whatever the covariance type).
    """

    log_startprob: np.ndarray
    log_transmat: np.ndarray
    means: np.ndarray
    """``(K, d)``."""
    inv_chol: np.ndarray
    """``(K, d, d)``: the inverse of the lower Cholesky factor ``L_k`` of ``covars_[k] = L_k L_k^T``."""
    log_norm: np.ndarray
    """``(K,)``: ``-(d log 2 pi + log det covars_[k]) / 2``."""

    @classmethod
    def of(cls, hmm: GaussianHMM) -> ForwardKernel:
        """The kernel of a fitted HMM; ``ValueError`` when a covariance is not positive definite."""
        covars = full_covars(hmm)
        k, d = covars.shape[:2]
        try:
            chol = np.linalg.cholesky(covars)  # (K, d, d), lower
        except np.linalg.LinAlgError:
            chol = np.empty_like(covars)
            for s in range(k):
                try:
                    chol[s] = np.linalg.cholesky(covars[s])
                except np.linalg.LinAlgError:
                    try:
                        chol[s] = np.linalg.cholesky(covars[s] + _CHOLESKY_JITTER * np.eye(d))
                    except np.linalg.LinAlgError:
                        raise ValueError("'covars' must be symmetric, positive-definite") from None
        inv_chol = np.linalg.inv(chol)
        log_det = 2.0 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)
        with np.errstate(divide="ignore"):
            log_startprob = np.log(np.asarray(hmm.startprob_, dtype=float))
            log_transmat = np.log(np.asarray(hmm.transmat_, dtype=float))
        return cls(log_startprob, log_transmat, np.array(hmm.means_, dtype=float), inv_chol,
                   -0.5 * (d * np.log(2.0 * np.pi) + log_det))

    def log_emission(self, z: np.ndarray) -> np.ndarray:
        """``log N(z_t; mu_k, S_k)`` of scaled rows ``z`` ``(n, d)``: ``(n, K)``."""
        diff = z[:, None, :] - self.means  # (n, K, d)
        y = np.einsum("kij,nkj->nki", self.inv_chol, diff)
        return self.log_norm - 0.5 * np.einsum("nki,nki->nk", y, y)

    def first(self, log_b: np.ndarray) -> np.ndarray:
        """Normalised log forward probabilities of the first row, from its log emissions."""
        return _log_normalise(self.log_startprob + log_b)

    def advance(self, log_alpha: np.ndarray, log_b: np.ndarray) -> np.ndarray:
        """One forward step: ``logsumexp(log_alpha[:, None] + log A, axis=0) + log_b``, normalised."""
        m = log_alpha[:, None] + self.log_transmat
        top = m.max(axis=0)
        top = np.where(np.isfinite(top), top, 0.0)
        with np.errstate(divide="ignore"):
            log_pred = top + np.log(np.exp(m - top).sum(axis=0))
        return _log_normalise(log_pred + log_b)

    def run(self, z: np.ndarray, log_alpha: np.ndarray | None = None) -> np.ndarray:
        """The normalised log forward probabilities after the scaled rows ``z`` (from the start when None)."""
        log_b = self.log_emission(z)
        if log_alpha is None:
            if not len(log_b):
                raise ValueError("no feature rows to filter")
            log_alpha, log_b = self.first(log_b[0]), log_b[1:]
        scaled = self._run_scaled(log_alpha, log_b)
        if scaled is not None:
            return scaled
        for row in log_b:
            log_alpha = self.advance(log_alpha, row)
        return log_alpha

    def _run_scaled(self, log_alpha: np.ndarray, log_b: np.ndarray) -> np.ndarray | None:
        """:meth:`advance` over many rows in the scaled (linear) form, several times faster; None if it underflows.

        ``a_t = (a_{t-1} @ A) * b_t`` normalised, with ``b_t = exp(log_b_t - max log_b_t)``: the same
        numbers as the log form unless a probability falls below ~1e-308. None when a step leaves no
        possible state; the log form then decides.
        """
        transmat = np.exp(self.log_transmat)
        b = np.exp(log_b - log_b.max(axis=1, keepdims=True)) if len(log_b) else log_b
        alpha = np.exp(log_alpha)
        for row in b:
            alpha = (alpha @ transmat) * row
            total = alpha.sum()
            if not total > 0:  # 0 or NaN
                return None
            alpha /= total
        with np.errstate(divide="ignore"):
            return np.log(alpha)


def full_covars(hmm: GaussianHMM) -> np.ndarray:
    """The ``(K, d, d)`` covariance matrices of ``hmm``, from its public ``covars_``, whatever the covariance type.

    hmmlearn 0.3.3 stores a fitted spherical model's variances once per feature, and its ``covars_``
    then repeats each state's matrix ``d`` times; one matrix per state is kept.
    """
    covars = np.asarray(hmm.covars_, dtype=float)
    k, d = np.asarray(hmm.means_).shape
    if hmm.covariance_type == "spherical" and len(covars) == k * d != k:
        covars = covars[::d]
    if covars.shape != (k, d, d):
        raise ValueError(f"covars_ of shape {covars.shape}, expected {(k, d, d)}")
    return covars


def _log_normalise(a: np.ndarray) -> np.ndarray:
    """``a - logsumexp(a)``; all NaN when no state is possible (every entry -inf) or ``a`` holds NaN."""
    top = a.max()
    if not np.isfinite(top):
        return np.full_like(a, np.nan)
    return a - (top + np.log(np.exp(a - top).sum()))


def _checked_rows(model: FittedRegimeModel, features: np.ndarray) -> np.ndarray:
    """Scaled rows of ``features`` ``(n, d)``; ``ValueError`` for a wrong width or a non-finite value."""
    x = np.asarray(features, dtype=float)
    if x.ndim != 2 or x.shape[1] != len(model.center):
        raise ValueError(f"expected feature rows of {len(model.center)} columns, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("feature rows must be finite (no NaN: a VIX model needs a VIX value on every row)")
    return (x - model.center) / model.scale


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
    kernel: ForwardKernel = field(repr=False)
    fit_log_alpha: np.ndarray = field(repr=False)
    """Normalised log forward probabilities (HMM order) at the last row of the fitting window."""
    warm_started: bool = False
    """Whether EM started from the previous model (False: the cold start)."""

    @property
    def n_features(self) -> int:
        """Columns of a feature row: 2 (return, realised_vol) or 3 (with the VIX)."""
        return len(self.center)

    def canonical(self, log_alpha: np.ndarray) -> np.ndarray:
        """Probabilities in canonical order from normalised log forward probabilities in HMM order."""
        probs = np.exp(log_alpha[self.order])
        return probs / probs.sum()

    def filter(self) -> RegimeFilter:
        """A filter at the last row of the fitting window, to be stepped with the rows after it."""
        return RegimeFilter(self, self.fit_log_alpha)

    def filter_over(self, features: np.ndarray) -> RegimeFilter:
        """A filter run from the start probabilities over ``features`` (rows in time order)."""
        return RegimeFilter(self, self.kernel.run(_checked_rows(self, features)))

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """Filtered state probabilities (canonical order) at the last row of ``features``."""
        return self.filter_over(features).probabilities


class RegimeFilter:
    """The forward filter of one fitted model, stepped one feature row at a time (rows in time order)."""

    def __init__(self, model: FittedRegimeModel, log_alpha: np.ndarray) -> None:
        self.model = model
        self._log_alpha = log_alpha
        self._probs = model.canonical(log_alpha)

    @property
    def probabilities(self) -> np.ndarray:
        """Filtered state probabilities (canonical order) at the last row taken."""
        return self._probs.copy()

    def step(self, row: np.ndarray) -> np.ndarray:
        """Take the next feature row (``model.n_features`` values, unscaled); its filtered probabilities.

        ``ValueError`` for a row of another width or with a non-finite value (the filter is unchanged).
        """
        z = _checked_rows(self.model, np.reshape(row, (1, -1)))
        kernel = self.model.kernel
        self._log_alpha = kernel.advance(self._log_alpha, kernel.log_emission(z)[0])
        self._probs = self.model.canonical(self._log_alpha)
        return self._probs.copy()


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


def _native_covars(full: np.ndarray, covariance_type: str) -> np.ndarray:
    """Full ``(K, d, d)`` covariances in the shape ``covars_`` takes for ``covariance_type``."""
    if covariance_type == "full":
        return full
    if covariance_type == "diag":
        return np.diagonal(full, axis1=1, axis2=2).copy()
    if covariance_type == "tied":
        return full[0]
    return np.diagonal(full, axis1=1, axis2=2).mean(axis=1)  # spherical: the mean variance


def _warm_hmm(previous: FittedRegimeModel, center: np.ndarray, scale: np.ndarray, params: HmmParams) -> GaussianHMM:
    """An unfitted HMM initialised from ``previous``, its Gaussians mapped into the scaling ``center``/``scale``."""
    prev = previous.hmm
    k = params.n_states
    ratio = previous.scale / scale  # D = diag(scale_old / scale_new)
    hmm = GaussianHMM(n_components=k, covariance_type=params.covariance_type, n_iter=params.n_iter,
                      tol=params.tol, random_state=params.random_state, init_params="",
                      implementation=params.implementation)
    hmm.n_features = len(center)
    hmm.startprob_ = np.full(k, 1.0 / k)
    hmm.transmat_ = (1.0 - WARM_TRANSMAT_MIX) * np.asarray(prev.transmat_) + WARM_TRANSMAT_MIX / k
    hmm.means_ = (np.asarray(prev.means_) * previous.scale + previous.center - center) / scale
    hmm.covars_ = _native_covars(full_covars(prev) * ratio[:, None] * ratio[None, :], params.covariance_type)
    return hmm


def _finish(hmm: GaussianHMM, features: np.ndarray, center: np.ndarray, scale: np.ndarray, params: HmmParams,
            fitted_ts: int, uses_vix: bool, warm: bool) -> FittedRegimeModel | None:
    """The model of a fitted ``hmm``: canonical order, labels, filter state; None when degenerate."""
    try:
        if not all(np.all(np.isfinite(a)) for a in (hmm.startprob_, hmm.transmat_, hmm.means_, full_covars(hmm))):
            return None
        with _THREADPOOLS.limit(limits=1):
            kernel = ForwardKernel.of(hmm)
            log_alpha = kernel.run((features - center) / scale)
    except ValueError:
        return None
    if np.isnan(log_alpha).any():
        return None
    order = np.argsort(hmm.means_[:, VOL_COLUMN], kind="stable")
    state_vol = hmm.means_[order, VOL_COLUMN] * scale[VOL_COLUMN] + center[VOL_COLUMN]
    labels = state_labels(state_vol, params.n_states, params.high_vol_min_ratio)
    log_alpha.flags.writeable = False
    return FittedRegimeModel(hmm, center, scale, order, labels, uses_vix, fitted_ts, len(features), kernel,
                             log_alpha, warm)


def _em(hmm: GaussianHMM, z: np.ndarray) -> GaussianHMM:
    """``hmm`` fitted on ``z``. With the ``scaling`` implementation (faster: the same EM in probability space) a pass
    that underflows, a row far from every state, raises ValueError: the fit is then redone from the same start in
    ``log`` space, which does not underflow."""
    start = copy.deepcopy(hmm) if hmm.implementation == "scaling" else None
    try:
        return hmm.fit(z)
    except ValueError as exc:
        if start is None:
            raise
        log.info("scaled HMM fit failed; fitting in log space", extra={"error": str(exc), "rows": len(z)})
        start.implementation = "log"
        return start.fit(z)


def _fit(hmm: GaussianHMM, features: np.ndarray, z: np.ndarray, center: np.ndarray, scale: np.ndarray,
         params: HmmParams, fitted_ts: int, uses_vix: bool, warm: bool) -> FittedRegimeModel | None:
    """Run EM from ``hmm``'s start on the scaled rows ``z``; None when it fails or degenerates (logged:
    a failed warm fit at INFO, since a cold one follows; a failed cold fit at WARNING)."""
    level, what = (logging.INFO, "warm HMM fit") if warm else (logging.WARNING, "HMM fit")
    try:
        with _THREADPOOLS.limit(limits=1):
            hmm = _em(hmm, z)
    except (ValueError, np.linalg.LinAlgError) as exc:
        log.log(level, f"{what} failed", extra={"error": str(exc), "rows": len(features)})
        return None
    model = _finish(hmm, features, center, scale, params, fitted_ts, uses_vix, warm=warm)
    if model is None:
        log.log(level, f"{what} degenerate", extra={"rows": len(features)})
    return model


def fit_regime_model(features: np.ndarray, params: HmmParams, fitted_ts: int, uses_vix: bool,
                     previous: FittedRegimeModel | None = None) -> FittedRegimeModel | None:
    """Fit the HMM on ``features`` (rows in time order); ``None`` when the fit fails or degenerates.

    With ``previous`` (a model of the same feature columns) EM starts from it (warm start); when that
    fit fails or degenerates, or without a compatible ``previous``, it starts cold.
    """
    center = features.mean(axis=0)
    scale = features.std(axis=0)
    scale = np.where(scale > 1e-12, scale, 1.0)
    z = (features - center) / scale
    if previous is not None and previous.n_features == features.shape[1]:
        try:
            warm_hmm = _warm_hmm(previous, center, scale, params)
        except (ValueError, np.linalg.LinAlgError) as exc:
            log.info("warm HMM start failed; fitting cold", extra={"error": str(exc), "rows": len(features)})
        else:
            model = _fit(warm_hmm, features, z, center, scale, params, fitted_ts, uses_vix, warm=True)
            if model is not None:
                return model
    hmm = GaussianHMM(n_components=params.n_states, covariance_type=params.covariance_type, n_iter=params.n_iter,
                      tol=params.tol, random_state=params.random_state, implementation=params.implementation)
    return _fit(hmm, features, z, center, scale, params, fitted_ts, uses_vix, warm=False)
