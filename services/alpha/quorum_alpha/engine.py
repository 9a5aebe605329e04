"""The alpha engine: routes bars and books to the signal agents and publishes their signals on ``signals.raw``."""

from __future__ import annotations

import math
from typing import Any

from quorum_common.bus.base import Publisher
from quorum_common.bus.message import Message
from quorum_common.engine import Engine, envelope
from quorum_common.runtime.clock import EventClock
from quorum_common.universe import INSTRUMENTS

from quorum_alpha.agents import Agent
from quorum_alpha.agents.bollinger import BollingerAgent
from quorum_alpha.agents.book import BookImbalanceAgent, book_problem
from quorum_alpha.agents.breakout import BreakoutAgent
from quorum_alpha.agents.momentum import EmaCrossoverAgent
from quorum_alpha.agents.pairs import PairRules, PairsAgent, same_sector_pairs
from quorum_alpha.config import AlphaSettings
from quorum_alpha.signal import Signal, clip

SIGNALS_TOPIC = "signals.raw"
BARS_TOPIC = "md.bars"
BOOK_TOPIC = "md.book"
REASON_INVALID_BAR = "invalid bar"
REASON_INVALID_BOOK = "invalid book"


def is_tradable(symbol: str) -> bool:
    """Whether ``symbol`` gets signals: universe instruments by their flag, unknown symbols are tradable."""
    inst = INSTRUMENTS.get(symbol)
    return inst is None or inst.tradable


def bar_problem(bar: dict[str, Any]) -> str | None:
    """Why a bar cannot be used (non-finite or non-positive prices, high below low, negative volume), or None."""
    prices = (bar["open"], bar["high"], bar["low"], bar["close"])
    if not all(math.isfinite(p) and p > 0 for p in prices):
        return f"prices must be finite and positive: {prices}"
    if bar["high"] < bar["low"]:
        return f"high {bar['high']} below low {bar['low']}"
    if not (math.isfinite(bar["volume"]) and bar["volume"] >= 0):
        return f"volume must be finite and non-negative: {bar['volume']}"
    return None


def build_agents(settings: AlphaSettings) -> list[Agent]:
    """The enabled bar agents, in a fixed order (so the output order is deterministic)."""
    agents: list[Agent] = []
    if "momentum" in settings.agents:
        agents.append(EmaCrossoverAgent(settings.ema_fast_span, settings.ema_slow_span, settings.ema_score_scale))
    if "breakout" in settings.agents:
        agents.append(BreakoutAgent(settings.breakout_window, settings.breakout_score_scale))
    if "bollinger" in settings.agents:
        agents.append(BollingerAgent(settings.bollinger_window, settings.bollinger_k))
    if "pairs" in settings.agents:
        candidates = settings.pair_legs() + (same_sector_pairs() if settings.pairs_search else [])
        rules = PairRules(settings.pairs_window, settings.pairs_test_every, settings.pairs_pvalue,
                          settings.pairs_adf_lags, settings.pairs_entry_z, settings.pairs_exit_z, settings.pairs_stop_z)
        agents.append(PairsAgent([p for p in candidates if is_tradable(p[0]) and is_tradable(p[1])], rules))
    return agents


class AlphaEngine(Engine):
    """Feeds every bar (and book) of a tradable symbol to the agents; publishes each returned signal.

    Signals are stamped with the input's ``ts_event`` (also their ``data_cutoff_ts``) and correlated
    with its ``event_id``. A bar older than or as old as the symbol's last bar (a redelivery) is
    skipped; a malformed bar or book goes to ``dlq.<topic>``. ``md.book`` is consumed only when the
    ``book`` agent is on.
    """

    inputs = (BARS_TOPIC,)
    rebuilds_from_history = True  # its state and outputs are all a record changes

    def __init__(self, settings: AlphaSettings, publisher: Publisher, clock: EventClock | None = None) -> None:
        super().__init__(publisher, clock)
        self.settings = settings
        self.agents = build_agents(settings)
        self.book_agent = BookImbalanceAgent(settings.book_levels, settings.book_ema_span) \
            if "book" in settings.agents else None
        if self.book_agent is not None:
            self.inputs = (BARS_TOPIC, BOOK_TOPIC)  # this instance also consumes books
        self._last_ts: dict[str, int] = {}
        self._tradable: dict[str, bool] = {}
        self.stale_bars = 0

    def _is_tradable(self, symbol: str) -> bool:
        tradable = self._tradable.get(symbol)
        if tradable is None:
            tradable = self._tradable[symbol] = is_tradable(symbol)
        return tradable

    def handle(self, msg: Message) -> None:
        """Route a bar or a book of a tradable symbol."""
        record = msg.value
        if not self._is_tradable(record["symbol"]):
            return
        if msg.topic == BOOK_TOPIC:
            self._on_book(msg)
        else:
            self._on_bar(msg)

    def _on_bar(self, msg: Message) -> None:
        bar = msg.value
        problem = bar_problem(bar)
        if problem is not None:
            self.publisher.dead_letter(msg.topic, bar, REASON_INVALID_BAR, key=msg.key, error=problem)
            return
        symbol, ts = bar["symbol"], bar["ts_event"]
        if ts <= self._last_ts.get(symbol, -1):
            self.stale_bars += 1
            return
        self._last_ts[symbol] = ts
        for agent in self.agents:
            for signal in agent.update(bar):
                self._publish(signal, bar, bar["interval"])

    def _on_book(self, msg: Message) -> None:
        if self.book_agent is None:
            return
        problem = book_problem(msg.value)
        if problem is not None:
            self.publisher.dead_letter(msg.topic, msg.value, REASON_INVALID_BOOK, key=msg.key, error=problem)
            return
        for signal in self.book_agent.update(msg.value):
            self._publish(signal, msg.value, None)

    def _publish(self, s: Signal, source: dict[str, Any], interval: str | None) -> None:
        ts = source["ts_event"]
        cause = s.correlation_id or source["event_id"]
        self.publisher.publish(SIGNALS_TOPIC, {
            **envelope(ts, s.agent_id, cause, correlation_id=cause),
            "agent_id": s.agent_id,
            "strategy": s.strategy,
            "symbol": s.symbol,
            "score": clip(s.score),
            "confidence": clip(s.confidence, 0.0, 1.0),
            "inputs": s.inputs,
            "paired_symbol": s.paired_symbol,
            "hedge_ratio": s.hedge_ratio,
            "interval": interval,
            "horizon_bars": s.horizon_bars,
            "data_cutoff_ts": ts,
            "reason": s.reason,
        }, key=s.symbol)
