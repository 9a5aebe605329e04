"""The manager engine: the compiled mandate and one ensemble decision per symbol and bar.

Phases (``quorum_common.phases``): signals, regime updates and forecasts of bar time ``t`` are
stamped ``t``; the ``sys.clock`` VOTE tick at ``t + 2`` (in lockstep they are released to the manager
just before it) makes the manager vote, for every symbol of the mandate's universe with signals at
``t``, and publish ``DecisionMade`` stamped with the tick (HOLD included). The first VOTE tick first
publishes the compiled mandate. A ``SET_MANDATE`` command
recompiles and republishes it at once; an invalid one goes to the dead-letter topic naming the field.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from quorum_common.bus.base import Publisher
from quorum_common.bus.message import Message
from quorum_common.engine import Engine, envelope, event_id
from quorum_common.phases import bar_time
from quorum_common.runtime.clock import EventClock

from quorum_manager.compiler import compile_mandate
from quorum_manager.config import ManagerSettings
from quorum_manager.ensemble import Vote, absent, vote
from quorum_manager.inputs import History, forecast_vote, sentiment_vote
from quorum_manager.mandate import AcceptedMandate, MandateError, accept_mandate, read_mandate_text

log = logging.getLogger(__name__)
VOTE_TICK = "VOTE"
"""The phase tick at which the manager votes (quorum_common.phases)."""

SIGNALS, FORECASTS, SENTIMENT, REGIME = "signals.raw", "model.forecasts", "alt.sentiment", "regime.state"
CLOCK, COMMANDS = "sys.clock", "control.commands"
DECISIONS, COMPILED = "signals.decisions", "mandate.compiled"
MANDATE_ROLES = frozenset({"OPERATOR", "RISK_OFFICER", "SYSTEM"})
"""Roles allowed to replace the mandate."""
_NS = 10**9


class ManagerEngine(Engine):
    """Compiles the mandate and runs the regime-weighted vote at every VOTE tick."""

    inputs = (SIGNALS, FORECASTS, SENTIMENT, REGIME, CLOCK, COMMANDS)
    rebuilds_from_history = True  # its state and outputs are all a record changes
    acts_on = (VOTE_TICK,)  # the vote (and the first compiled mandate) on every VOTE tick

    def __init__(self, settings: ManagerSettings, publisher: Publisher, clock: EventClock | None = None) -> None:
        super().__init__(publisher, clock)
        self.settings = settings
        self._version = 0
        self._accepted: AcceptedMandate = accept_mandate(read_mandate_text(settings.mandate_path))
        self._compiled: dict[str, Any] | None = None
        self._thresholds: dict[str, float] = {}
        """The vote thresholds of the mandate in force (set by :meth:`_install`), as decisions carry them."""
        self._pending: dict[int, dict[str, dict[str, dict[str, Any]]]] = {}
        self._voted_through = -1
        self._regimes: History[dict[str, Any]] = History()
        self._forecasts: History[dict[str, Any]] = History()
        self._sentiment: History[dict[str, Any]] = History()
        self._last_close: dict[str, float] = {}
        self._sentiment_window = settings.manager_sentiment_window_s * _NS
        self._forecast_age = settings.manager_forecast_max_age_s * _NS

    @property
    def compiled(self) -> dict[str, Any] | None:
        """The compiled mandate in force; None until the first VOTE tick or SET_MANDATE."""
        return self._compiled

    def handle(self, msg: Message) -> None:
        """Route one record to its handler."""
        {SIGNALS: self._on_signal, FORECASTS: self._on_forecast, SENTIMENT: self._on_sentiment,
         REGIME: self._on_regime, CLOCK: self._on_clock, COMMANDS: self._on_command}[msg.topic](msg)

    # --- inputs -------------------------------------------------------------------------------------
    def _on_signal(self, msg: Message) -> None:
        sig = msg.value
        problem = _range_problem(sig["score"], -1, 1, "score") or _range_problem(sig["confidence"], 0, 1, "confidence")
        if problem:
            self._refuse(msg, "invalid signal", problem)
            return
        bar = bar_time(sig["ts_event"])
        if bar <= self._voted_through:
            self._refuse(msg, "late signal", f"bar {bar} was already voted at or before {self._voted_through}")
            return
        self._pending.setdefault(bar, {}).setdefault(sig["symbol"], {})[sig["agent_id"]] = sig

    def _on_forecast(self, msg: Message) -> None:
        try:
            forecast_vote(msg.value, 1.0)
        except ValueError as exc:
            self._refuse(msg, "invalid forecast", str(exc))
            return
        self._forecasts.add(msg.value["symbol"], bar_time(msg.ts_event), msg.value)

    def _on_sentiment(self, msg: Message) -> None:
        rec = msg.value
        problem = _range_problem(rec["score"], -1, 1, "score") or _range_problem(rec["confidence"], 0, 1, "confidence")
        if problem:
            self._refuse(msg, "invalid sentiment", problem)
            return
        self._sentiment.add(rec["symbol"], bar_time(msg.ts_event), rec)

    def _on_regime(self, msg: Message) -> None:
        if msg.value["scope"] == self.settings.manager_regime_scope:
            self._regimes.add("regime", bar_time(msg.ts_event), msg.value)

    def _on_command(self, msg: Message) -> None:
        cmd = msg.value
        if cmd["command"] != "SET_MANDATE":
            return  # trading-state commands are the risk service's
        if cmd["role"] not in MANDATE_ROLES:
            self._refuse(msg, "forbidden", f"role: {cmd['role']} may not set the mandate")
            return
        if not cmd.get("mandate_document"):
            self._refuse(msg, "invalid mandate", "mandate_document: required for SET_MANDATE")
            return
        try:
            accepted = accept_mandate(cmd["mandate_document"])
        except MandateError as exc:
            self._refuse(msg, "invalid mandate", str(exc))
            return
        self._install(accepted, msg.ts_event, cmd["issued_by"])

    # --- phases -------------------------------------------------------------------------------------
    def _on_clock(self, msg: Message) -> None:
        if msg.value["kind"] != VOTE_TICK:
            return
        tick_ts = msg.ts_event
        t = bar_time(tick_ts)
        if self._compiled is None:
            self._install(self._accepted, tick_ts, "SYSTEM")
        universe = {m.symbol for m in self._accepted.mandate.universe}
        for bar in sorted(b for b in self._pending if b <= t):
            for symbol, signals in sorted(self._pending.pop(bar).items()):
                if symbol in universe:
                    self._decide(symbol, bar, signals, tick_ts)
        self._voted_through = max(self._voted_through, t)
        self._regimes.prune(t)
        self._forecasts.prune(t - self._forecast_age)
        self._sentiment.prune(t - self._sentiment_window)

    def _decide(self, symbol: str, bar: int, signals: dict[str, dict[str, Any]], tick_ts: int) -> None:
        votes = [Vote(a, s["strategy"], s["score"], s["confidence"], s["event_id"], s["ts_event"])
                 for a, s in sorted(signals.items())]
        votes += self._model_votes(symbol, bar, {v.strategy for v in votes})
        regime = self._regimes.latest("regime", bar)
        label = regime["label"] if regime else "UNKNOWN"
        ensemble = self._accepted.mandate.ensemble
        outcome = vote(votes, label, ensemble, self.settings.manager_count_absent_inputs)
        price = self._reference_price(symbol, bar, signals)
        if price is None:
            log.warning("no reference price, no decision", extra={"symbol": symbol, "bar": bar})
            return
        decision_id = event_id("decision", symbol, bar)
        self.publisher.publish(DECISIONS, {
            **envelope(tick_ts, "decision", symbol, correlation_id=decision_id),
            "decision_id": decision_id,
            "symbol": symbol,
            "action": outcome.action,
            "combined_score": outcome.combined_score,
            "confidence": outcome.confidence,
            "regime_label": label,
            "regime_state": regime["state"] if regime else None,
            "thresholds": dict(self._thresholds),
            "breakdown": outcome.breakdown,
            "reference_price": price,
            "mandate_id": self._accepted.mandate.mandate_id,
            "mandate_version": self._version,
        }, key=symbol)

    def _model_votes(self, symbol: str, bar: int, present: set[str]) -> list[Vote]:
        """The forecast and sentiment votes (absent ones vote 0), unless a signal already carries them."""
        out: list[Vote] = []
        if "ML_FORECAST" not in present:
            fc = self._latest_forecast(symbol, bar)
            out.append(forecast_vote(fc, self.settings.manager_forecast_score_scale) if fc
                       else absent("forecast", "ML_FORECAST"))
        if "SENTIMENT" not in present:
            scored = self._sentiment.window(symbol, bar, self._sentiment_window)
            out.append(sentiment_vote(scored) if scored else absent("sentiment", "SENTIMENT"))
        return out

    def _latest_forecast(self, symbol: str, bar: int) -> dict[str, Any] | None:
        """The latest forecast as of ``bar``; a TFT forecast beats the baseline of the same bar."""
        window = self._forecasts.window(symbol, bar, self._forecast_age)
        if not window:
            return None
        newest = window[-1][0]
        same_bar = [f for ts, f in window if ts == newest]
        return next((f for f in reversed(same_bar) if not f["is_baseline"]), same_bar[-1])

    def _reference_price(self, symbol: str, bar: int, signals: dict[str, dict[str, Any]]) -> float | None:
        for _, sig in sorted(signals.items()):
            close = sig["inputs"].get("close")
            if close is not None and math.isfinite(close) and close > 0:
                self._last_close[symbol] = close
                return close
        fc = self._latest_forecast(symbol, bar)
        if fc and fc.get("reference_price"):
            return fc["reference_price"]
        return self._last_close.get(symbol)

    # --- mandate ------------------------------------------------------------------------------------
    def _install(self, accepted: AcceptedMandate, ts_event: int, compiled_by: str) -> None:
        """Put ``accepted`` in force as the next version and publish what it compiles to."""
        self._version += 1
        self._accepted = accepted
        self._thresholds = accepted.mandate.ensemble.thresholds.model_dump()  # on every decision: dumped once
        self._compiled = compile_mandate(accepted.mandate, accepted.source_document, ts_event=ts_event,
                                         version=self._version, compiled_by=compiled_by,
                                         explicit_fields=set(accepted.explicit_fields))
        self.publisher.publish(COMPILED, self._compiled, key=accepted.mandate.mandate_id)
        log.info("mandate compiled", extra={"mandate_id": accepted.mandate.mandate_id, "version": self._version})

    def _refuse(self, msg: Message, reason: str, error: str) -> None:
        self.publisher.dead_letter(msg.topic, msg.value, reason, key=msg.key, error=error)


def _range_problem(value: float, lo: float, hi: float, name: str) -> str | None:
    """A message naming ``name`` when ``value`` is not a finite number in [lo, hi]."""
    if math.isfinite(value) and lo <= value <= hi:
        return None
    return f"{name}: {value} is not in [{lo}, {hi}]"

