"""Momentum: the EMA crossover."""

from __future__ import annotations

import math
from dataclasses import dataclass

from quorum_alpha.agents import Bar
from quorum_alpha.signal import Signal

AGENT_ID = "alpha.momentum.ema_crossover"


@dataclass(slots=True)
class _EmaState:
    fast: float
    slow: float
    bars: int = 0


class EmaCrossoverAgent:
    """Per symbol, score = tanh(scale · (fast EMA − slow EMA) / slow EMA), once ``slow_span`` bars are in.

    Confidence grows with the bars seen, reaching 1 after twice the slow span.
    """

    def __init__(self, fast_span: int, slow_span: int, score_scale: float) -> None:
        self.fast_span, self.slow_span, self.score_scale = fast_span, slow_span, score_scale
        self._a_fast = 2.0 / (fast_span + 1)
        self._a_slow = 2.0 / (slow_span + 1)
        self._state: dict[str, _EmaState] = {}

    def update(self, bar: Bar) -> list[Signal]:
        """Update the symbol's EMAs with the bar's close; one signal once the slow EMA is warm."""
        symbol, close = bar["symbol"], bar["close"]
        st = self._state.get(symbol)
        if st is None:
            st = self._state[symbol] = _EmaState(close, close)
        st.fast += self._a_fast * (close - st.fast)
        st.slow += self._a_slow * (close - st.slow)
        st.bars += 1
        if st.bars < self.slow_span:
            return []
        gap = (st.fast - st.slow) / st.slow
        return [Signal(
            agent_id=AGENT_ID, strategy="MOMENTUM", symbol=symbol,
            score=math.tanh(self.score_scale * gap),
            confidence=min(1.0, st.bars / (2 * self.slow_span)),
            inputs={"close": close, "ema_fast": st.fast, "ema_slow": st.slow, "gap": gap},
            reason=f"EMA {self.fast_span} {'above' if gap > 0 else 'below'} EMA {self.slow_span}",
            horizon_bars=self.fast_span,
        )]
