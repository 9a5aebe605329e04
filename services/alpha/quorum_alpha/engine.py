"""Signal agents. For now: the EMA-crossover momentum agent."""

from __future__ import annotations

import math
from dataclasses import dataclass

from quorum_common.bus.base import Publisher
from quorum_common.bus.message import Message
from quorum_common.engine import Engine, envelope
from quorum_common.runtime.clock import EventClock

from quorum_alpha.config import AlphaSettings

SIGNALS_TOPIC = "signals.raw"
AGENT_ID = "alpha.momentum.ema_crossover"


@dataclass
class _EmaState:
    fast: float
    slow: float
    bars: int


class AlphaEngine(Engine):
    """Per symbol, an EMA crossover: score = tanh(scale · (fast − slow) / slow)."""

    inputs = ("md.bars",)

    def __init__(self, settings: AlphaSettings, publisher: Publisher, clock: EventClock | None = None) -> None:
        super().__init__(publisher, clock)
        self.settings = settings
        self._a_fast = 2.0 / (settings.ema_fast_span + 1)
        self._a_slow = 2.0 / (settings.ema_slow_span + 1)
        self._state: dict[str, _EmaState] = {}

    def handle(self, msg: Message) -> None:
        """Update the symbol's EMAs with the bar; publish a signal once the slow EMA is warm."""
        bar = msg.value
        symbol, close = bar["symbol"], bar["close"]
        st = self._state.get(symbol)
        if st is None:
            st = self._state[symbol] = _EmaState(close, close, 0)
        st.fast += self._a_fast * (close - st.fast)
        st.slow += self._a_slow * (close - st.slow)
        st.bars += 1
        if st.bars < self.settings.ema_slow_span:
            return
        gap = (st.fast - st.slow) / st.slow
        ts = bar["ts_event"]
        self.publisher.publish(SIGNALS_TOPIC, {
            **envelope(ts, AGENT_ID, symbol, correlation_id=bar["event_id"]),
            "agent_id": AGENT_ID,
            "strategy": "MOMENTUM",
            "symbol": symbol,
            "score": math.tanh(self.settings.ema_score_scale * gap),
            "confidence": min(1.0, st.bars / (2 * self.settings.ema_slow_span)),
            "inputs": {"close": close, "ema_fast": st.fast, "ema_slow": st.slow, "gap": gap},
            "paired_symbol": None,
            "hedge_ratio": None,
            "interval": bar["interval"],
            "horizon_bars": self.settings.ema_fast_span,
            "data_cutoff_ts": ts,
            "reason": "fast EMA above slow" if gap > 0 else "fast EMA below slow",
        }, key=symbol)
