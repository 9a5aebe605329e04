"""The regime engine: one ``RegimeChanged`` per market bar once the HMM has been fitted.

Per market bar at ``t`` (see :mod:`quorum_regime.features`) the engine appends a feature row,
refits the HMM every ``refit_every`` rows on the last ``window_bars`` rows (or on every row, in
``expanding`` mode) and publishes the filtered state probabilities at ``t`` on ``regime.state``,
stamped ``t`` so the manager reads them at ``BAR_CLOSE`` (``t + 1``). Before the first fit nothing
is published (consumers treat the regime as ``UNKNOWN``). The VIX is a feature of a fit when every
row of its window has a VIX value (once seen, the VIX is forward-filled, so later rows keep one).

The probabilities come from a :class:`~quorum_regime.model.RegimeFilter`: a fit leaves it at the
last row of its window (the current row), and every later row steps it once, so a row's
probabilities use only rows up to it and cost O(1) in the window length. A filter run from the fit
window's first row forgets that start exponentially fast, so they match the filtered probabilities
of the last ``window_bars`` rows to numerical precision. With ``warm_start`` a refit starts EM from
the previous model (see :func:`~quorum_regime.model.fit_regime_model`).
"""

from __future__ import annotations

import logging
import math
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

import numpy as np
from quorum_common.bus.base import Publisher
from quorum_common.bus.message import Message
from quorum_common.engine import Engine, envelope
from quorum_common.runtime.clock import EventClock
from quorum_common.runtime.worker import worker_pool

from quorum_regime.config import RegimeSettings
from quorum_regime.features import FeatureBuilder, FeatureRow, StaleBarError
from quorum_regime.model import MODEL_NAME, FittedRegimeModel, HmmParams, RegimeFilter, fit_regime_model

REGIME_TOPIC = "regime.state"
BARS_TOPIC = "md.bars"

log = logging.getLogger(__name__)


@dataclass
class LaggedFit:
    """A refit started at row ``fitted_at`` (rows seen), put in force at row ``lands_at``."""

    lands_at: int
    fitted_at: int
    args: tuple
    """The fit's arguments (kept to fit inline if the worker fails)."""
    result: FittedRegimeModel | Future | None


class RegimeEngine(Engine):
    """Gaussian-HMM market regime over the market proxy's returns, realised volatility and the VIX."""

    inputs = (BARS_TOPIC,)
    rebuilds_from_history = True  # its state and outputs are all a record changes
    transient = Engine.transient | {"_worker", "_refit"}  # the fit worker; the refit timer metrics may set

    def __init__(self, settings: RegimeSettings, publisher: Publisher, clock: EventClock | None = None) -> None:
        super().__init__(publisher, clock)
        self.settings = settings
        self._params = HmmParams(settings.n_states, settings.covariance_type, settings.n_iter, settings.tol,
                                 settings.random_state, settings.high_vol_min_ratio, settings.hmm_implementation)
        self._features = FeatureBuilder(settings.vol_window, settings.periods_per_year, settings.max_pending_bars)
        self._keep = settings.window_bars if settings.window_mode == "rolling" else None
        self._x = np.empty((0, 3))
        """Feature rows (return, realised_vol, vix; NaN before the first VIX bar), oldest first."""
        self._rows_seen = 0
        self._next_fit_at = settings.min_fit_bars
        self._filter: RegimeFilter | None = None
        """The forward filter of the model in force, at the last feature row."""
        self.fits = 0
        self._last: tuple[int, str] | None = None
        self._lagged: LaggedFit | None = None
        """A refit under way (``refit_lag_rows`` ≥ 1): it lands once the rows seen reach its ``lands_at``."""
        self._worker = worker_pool(fit_regime_model.__module__) \
            if settings.refit_lag_rows and settings.fit_worker == "process" else None

    @property
    def model(self) -> FittedRegimeModel | None:
        """The model in force (the last successful fit), or None before the first one."""
        return self._filter.model if self._filter is not None else None

    def handle(self, msg: Message) -> None:
        """Feed a bar of the market proxy or the VIX; publish the regime of every completed row."""
        bar = msg.value
        symbol = bar["symbol"]
        s = self.settings
        if bar["interval"] != s.interval or symbol not in (s.market_symbol, s.vix_symbol):
            return
        close = bar["close"]
        if not (math.isfinite(close) and close > 0):
            self.publisher.dead_letter(msg.topic, bar, "invalid close price", key=msg.key, error=f"close={close!r}")
            return
        try:
            if symbol == s.market_symbol:
                rows = self._features.add_market(bar["ts_event"], close, bar["event_id"])
            else:
                rows = self._features.add_vix(bar["ts_event"], close)
        except StaleBarError as exc:
            self.publisher.dead_letter(msg.topic, bar, "duplicate or out-of-order bar", key=msg.key, error=str(exc))
            return
        for row in rows:
            self._on_row(row)

    def _on_row(self, row: FeatureRow) -> None:
        vix = math.nan if row.vix is None else row.vix
        self._x = np.vstack([self._x, (row.log_return, row.realised_vol, vix)])
        if self._keep is not None:
            self._x = self._x[-self._keep:]
        self._rows_seen += 1
        fitted = False
        if self._rows_seen >= self._next_fit_at:  # a lagged fit has landed by then (refit_lag_rows < refit_every)
            self._next_fit_at = self._rows_seen + self.settings.refit_every
            if self.settings.refit_lag_rows:
                self._start_refit(row.ts)
            else:
                fitted = self._refit(row.ts)
        if self._lagged is not None and self._rows_seen >= self._lagged.lands_at:
            fitted = self._land_refit()
        if self._filter is not None:
            if not fitted:  # a new fit's filter is already at this row (the last of its window)
                self._filter.step(self._x[-1, :self._filter.model.n_features])
            self._publish(row, self._filter.model, self._filter.probabilities)

    def _fit_args(self, ts: int) -> tuple:
        """The arguments of :func:`fit_regime_model` for the window ending at the current row."""
        with_vix = not np.isnan(self._x[:, 2]).any()
        previous = self.model if self.settings.warm_start else None
        return self._x if with_vix else self._x[:, :2], self._params, ts, with_vix, previous

    def _refit(self, ts: int) -> bool:
        """Fit on the window ending at the current row; whether a new model is in force."""
        return self._put_in_force(fit_regime_model(*self._fit_args(ts)), 0)

    def _put_in_force(self, model: FittedRegimeModel | None, rows_since_fit: int) -> bool:
        """Filter with ``model`` (fitted ``rows_since_fit`` rows ago: its filter steps over them to the current
        row); whether a new model is in force (not when the fit failed)."""
        if model is None:
            return False
        self._filter = model.filter()
        for x in self._x[len(self._x) - rows_since_fit:] if rows_since_fit else ():
            self._filter.step(x[:model.n_features])
        self.fits += 1
        return True

    def _start_refit(self, ts: int) -> None:
        """Start the fit of the window ending at the current row; it lands ``refit_lag_rows`` rows later."""
        args = self._fit_args(ts)
        lands_at = self._rows_seen + self.settings.refit_lag_rows
        if self._worker is None:
            self._lagged = LaggedFit(lands_at, self._rows_seen, args, fit_regime_model(*args))
        else:
            self._lagged = LaggedFit(lands_at, self._rows_seen, args, self._worker.submit(fit_regime_model, *args))

    def _land_refit(self) -> bool:
        """Put the lagged fit's model in force, its filter stepped from the fit's row to the current one;
        whether a new model is in force (a failed worker's fit is done here, with the same result)."""
        lagged, self._lagged = self._lagged, None
        model = lagged.result
        if isinstance(model, Future):
            try:
                model = model.result()
            except BrokenProcessPool as exc:
                log.error("regime fit worker died; restarting it and fitting inline", extra={"error": str(exc)})
                self._worker = worker_pool(fit_regime_model.__module__)
                model = fit_regime_model(*lagged.args)
        return self._put_in_force(model, self._rows_seen - lagged.fitted_at)

    def checkpoint(self) -> bytes | None:
        """The engine's state (see :meth:`Engine.checkpoint`); None while a lagged refit is still running in the
        worker, or failed there (it lands first: :meth:`_land_refit`). A finished one is kept as its model."""
        lagged = self._lagged
        if lagged is not None and isinstance(lagged.result, Future):
            if not lagged.result.done() or lagged.result.exception() is not None:
                return None
            lagged.result = lagged.result.result()
        return super().checkpoint()

    def close(self) -> None:
        """Stop the fit worker, if any."""
        if self._worker is not None:
            self._worker.shutdown(wait=False, cancel_futures=True)

    def _publish(self, row: FeatureRow, model: FittedRegimeModel, probs: np.ndarray) -> None:
        state = int(np.argmax(probs))
        label = model.labels[state]
        previous = self._last
        self._last = (state, label)
        features: dict[str, float] = {"return": row.log_return, "realised_vol": row.realised_vol}
        if model.uses_vix and row.vix is not None:
            features["vix"] = row.vix
        record: dict[str, Any] = {
            **envelope(row.ts, "regime", self.settings.scope, correlation_id=row.bar_event_id),
            "scope": self.settings.scope,
            "state": state,
            "label": label,
            "previous_state": previous[0] if previous else None,
            "previous_label": previous[1] if previous else None,
            "is_transition": previous is None or previous[1] != label,
            "probabilities": [float(p) for p in probs],
            "state_labels": list(model.labels),
            "features": features,
            "model": MODEL_NAME,
            "n_states": self.settings.n_states,
            "window_bars": model.window_rows,
            "data_cutoff_ts": row.ts,
            "fitted_ts": model.fitted_ts,
        }
        self.publisher.publish(REGIME_TOPIC, record, key=self.settings.scope)
