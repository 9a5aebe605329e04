"""Smaller caps for instruments the desk can trade only now and then.

The portfolio trades a symbol only on a fresh bar of it (execution fills at its next one), so a position in an
instrument with a bar every ``k`` sessions (monthly BTC-USD bars in a desk of daily stocks: ``k`` about 21) cannot
be cut for up to ``k`` sessions, whatever the drawdown budget or the risk state say meanwhile. Over ``k`` sessions
an instrument's price moves about ``√k`` times as far as over one, so its cap is divided by ``√k``
(:func:`interval_caps`): the loss the desk cannot act on from a full-cap position in it is then about that of a
full-cap position it can trade every session. A symbol with a bar every session keeps its cap.

The intervals are measured on the optimiser's returns window
(:meth:`quorum_portfolio.prices.PriceHistory.bar_intervals`), from events only, so a replay sizes the same way.
"""

from __future__ import annotations

import math


def interval_cap(cap: float, interval: float | None) -> float:
    """``cap / √interval`` for an instrument with a bar every ``interval`` sessions (> 1); else ``cap``."""
    if interval is None or not math.isfinite(interval) or interval <= 1.0:
        return cap
    return cap / math.sqrt(interval)


def interval_caps(caps: dict[str, float], intervals: dict[str, float]) -> dict[str, float]:
    """Every instrument cap of ``caps`` divided by the square root of its bar interval (:func:`interval_cap`)."""
    return {s: interval_cap(c, intervals.get(s)) for s, c in caps.items()}
