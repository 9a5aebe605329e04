"""How much of its targets the portfolio holds: the drawdown budget left and the volatility target.

The optimiser and the decision tilt say *what* to hold; this says *how much of it*. Two scales, each in
[0, 1], multiply the tilted targets (the rest stays in cash; nothing is ever levered up):

- **Drawdown budget** (:func:`drawdown_scale`): full size while the drawdown is under the compiled mandate's
  ``derisk_drawdown``, then shrinking linearly to nothing at the drawdown lock in force. A desk that waits for
  the lock reaches it fully invested, and the lock (REDUCING until a person resumes) then stops it for good in
  a backtest; shrinking first spends the budget gradually, so the lock is the backstop it is meant to be. The
  cost is the one every drawdown floor has: near the lock the desk holds little, so it recovers slowly.
- **Volatility target** (:func:`volatility_scale`): ``target / volatility`` when the targets' recent annualised
  volatility (:func:`holdings_volatility`, measured again at every rebalance tick: the higher of that over the
  trailing ``volatility_window_bars`` sessions and over the last ``volatility_short_window_bars``) is above the
  mandate's ``target_volatility``, else 1, so a calm market is held in full and a turbulent one in proportion,
  from the days its returns turn.

Both read only the ledger's drawdown, the limits the risk service publishes and the bars' closes, all from
events, so a replay scales the same way.
"""

from __future__ import annotations

import math

import numpy as np


def drawdown_scale(drawdown: float, derisk_from: float | None, lock: float | None) -> float:
    """1 under ``derisk_from``, falling linearly to 0 at ``lock`` (and 0 beyond it); 1 when either is None.

    A lock at or under ``derisk_from`` (a person tightened it) leaves no ramp: full size under it, none at it.
    """
    if derisk_from is None or lock is None:
        return 1.0
    if drawdown >= lock:
        return 0.0
    if drawdown <= derisk_from or lock <= derisk_from:
        return 1.0
    return (lock - drawdown) / (lock - derisk_from)


def volatility_scale(volatility: float | None, target: float | None) -> float:
    """``target / volatility`` when the volatility is above the target, else 1 (also when either is unknown)."""
    if target is None or volatility is None or not math.isfinite(volatility) or volatility <= target:
        return 1.0
    return target / volatility


def scaled(weights: dict[str, float], scale: float) -> dict[str, float]:
    """``weights`` times ``scale``."""
    return weights if scale == 1.0 else {s: w * scale for s, w in weights.items()}


def holdings_volatility(returns: np.ndarray, weights: np.ndarray, periods_per_year: int,
                        short_window: int | None = None) -> float | None:
    """Annualised volatility of holding ``weights`` (one per column) over ``returns`` (rows: sessions), or over its
    last ``short_window`` rows when that is higher (a turn to turbulence shows there first; the whole window keeps one
    calm week from reading as a calm quarter); None under two rows."""
    if len(returns) < 2:
        return None
    held = returns @ weights
    recent = held[-short_window:] if short_window is not None and short_window >= 2 else held
    return float(max(np.std(held, ddof=1), np.std(recent, ddof=1)) * math.sqrt(periods_per_year))
