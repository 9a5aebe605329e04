"""Momentum: the Donchian-channel breakout."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from quorum_alpha.agents import Bar
from quorum_alpha.rolling import RollingExtreme, RollingMeanStd
from quorum_alpha.signal import Signal

AGENT_ID = "alpha.momentum.breakout"


@dataclass(slots=True)
class _Channel:
    high: RollingExtreme
    low: RollingExtreme
    volume: RollingMeanStd
    seen: int = field(default=0)


class BreakoutAgent:
    """Per symbol, the close against the channel of the previous ``window`` bars' highs and lows.

    Above the channel's high: score = tanh(scale · (close − high) / width) > 0; below its low the
    mirror image; inside the channel 0. Confidence is the volume confirmation: the bar's volume over
    the window's mean volume, capped at 1 (0.5 when there is no volume).
    """

    def __init__(self, window: int, score_scale: float) -> None:
        self.window, self.score_scale = window, score_scale
        self._state: dict[str, _Channel] = {}

    def update(self, bar: Bar) -> list[Signal]:
        """Compare the close with the channel of the previous bars, then add the bar to the channel."""
        symbol, close = bar["symbol"], bar["close"]
        ch = self._state.get(symbol)
        if ch is None:
            ch = self._state[symbol] = _Channel(
                RollingExtreme(self.window), RollingExtreme(self.window, largest=False), RollingMeanStd(self.window)
            )
        out: list[Signal] = []
        if ch.high.full:
            out.append(self._signal(symbol, close, bar["volume"], ch))
        ch.high.push(bar["high"])
        ch.low.push(bar["low"])
        ch.volume.push(bar["volume"])
        return out

    def _signal(self, symbol: str, close: float, volume: float, ch: _Channel) -> Signal:
        high, low = ch.high.value, ch.low.value
        width = max(high - low, 1e-12 * abs(high), 1e-12)
        if close > high:
            score, reason = math.tanh(self.score_scale * (close - high) / width), f"close above {self.window}-bar high"
        elif close < low:
            score, reason = -math.tanh(self.score_scale * (low - close) / width), f"close below {self.window}-bar low"
        else:
            score, reason = 0.0, f"close inside the {self.window}-bar channel"
        mean_volume = ch.volume.mean
        confidence = min(1.0, volume / mean_volume) if mean_volume > 0 else 0.5
        return Signal(
            agent_id=AGENT_ID, strategy="MOMENTUM", symbol=symbol, score=score, confidence=max(0.0, confidence),
            inputs={"close": close, "channel_high": high, "channel_low": low, "volume": volume,
                    "mean_volume": mean_volume},
            reason=reason, horizon_bars=self.window,
        )
