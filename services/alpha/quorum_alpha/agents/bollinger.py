"""Mean reversion: the Bollinger z-score."""

from __future__ import annotations

import math

from quorum_alpha.agents import Bar
from quorum_alpha.rolling import RollingMeanStd
from quorum_alpha.signal import Signal

AGENT_ID = "alpha.mean_reversion.bollinger"


class BollingerAgent:
    """Per symbol, z = (close − mean) / std over the last ``window`` closes (the bar included).

    Score = −tanh(z / k): a close above the upper band (z > k) is a sell, below the lower band a buy.
    Confidence = min(1, |z| / k): how far the close has stretched towards the bands.
    """

    def __init__(self, window: int, k: float) -> None:
        self.window, self.k = window, k
        self._state: dict[str, RollingMeanStd] = {}

    def update(self, bar: Bar) -> list[Signal]:
        """Add the close to the symbol's window; one signal once the window is full."""
        symbol, close = bar["symbol"], bar["close"]
        stats = self._state.get(symbol)
        if stats is None:
            stats = self._state[symbol] = RollingMeanStd(self.window)
        stats.push(close)
        if not stats.full:
            return []
        mean, std = stats.mean, stats.std
        z = (close - mean) / std if std > 1e-12 * abs(mean) and std > 0 else 0.0
        band = "above the upper" if z > self.k else "below the lower" if z < -self.k else "inside the"
        return [Signal(
            agent_id=AGENT_ID, strategy="MEAN_REVERSION", symbol=symbol,
            score=-math.tanh(z / self.k), confidence=min(1.0, abs(z) / self.k),
            inputs={"close": close, "mean": mean, "std": std, "zscore": z,
                    "upper_band": mean + self.k * std, "lower_band": mean - self.k * std},
            reason=f"close {band} band (z={z:+.2f})", horizon_bars=self.window,
        )]
