"""The portfolio engine: ledger from fills, optimiser targets tilted by decisions, rebalancing orders.

Inputs and what each does:

- ``mandate.compiled``: the mandate to follow. Until one arrives the engine keeps its ledger but sets no
  targets, proposes no orders and publishes no snapshots (fail closed). The first one deposits its
  capital; a newer version forces a re-solve and a ``MANDATE_CHANGE`` rebalance.
- ``md.bars``: marks (the ledger revalues) and the close history the optimiser reads (only bars with
  ``ts_event <= t``).
- ``exec.fills``: applied to the ledger (a fill is a fact; see :mod:`quorum_portfolio.ledger`).
- ``signals.decisions``: the latest decision per symbol, while younger than ``decision_max_age_days``,
  tilts its target (:mod:`quorum_portfolio.tilt`).
- ``risk.decisions`` / ``exec.reports``: a rejection or a final status ends an order's flight.
- ``control.state``: the desk's trading state and limits. The targets are scaled by the drawdown budget left before
  the drawdown lock in force and by the mandate's volatility target (:mod:`quorum_portfolio.exposure`; the scale is
  on every snapshot as ``exposure_scale``). An instrument with a bar only every ``k`` sessions has its cap divided by
  ``√k`` (:mod:`quorum_portfolio.trading_interval`; the ``size_by_bar_interval`` setting). Under ``REDUCING``
  (the drawdown lock, reduce-only) the targets are scaled by ``reducing_target_scale`` and only sells are
  proposed, so the desk actually reduces the risk it holds instead of waiting; under ``HALTED`` nothing is
  proposed. The targets stay within the position and gross exposure limits in force (the critic tightens
  them), and a symbol whose last bar is older than the ``stale_price_ns`` limit is left out of a rebalance, so
  the rebalance does not propose what the risk service would refuse. A change of state or of those limits
  triggers a ``RISK_STATE`` rebalance at the next tick.
- ``sys.clock`` ``REBALANCE`` tick (``t + 3``; the kind is the ``rebalance_tick`` setting): re-solve when
  due (first time, mandate change, calendar rebalance due, or ``reoptimise_bars`` ticks since the last
  solve) and publish ``portfolio.targets`` when its weights land; decide the rebalance
  (:mod:`quorum_portfolio.rebalance`) and publish ``orders.proposed`` stamped with the tick's time, each
  saying which decision tilted its symbol's target and the target's share owed to that tilt
  (``tilt_decision_id``, ``tilt_share``: :func:`quorum_portfolio.tilt.tilts`, what the critic attributes by);
  publish a ``portfolio.snapshots`` record.
  No order is proposed for a symbol while an earlier one is in flight (until ``inflight_timeout_bars`` bars
  of that symbol pass unanswered: execution fills at a symbol's next bar, a month later for monthly bars, and
  the risk service counts the order's exposure until then). An order whose side agrees with the symbol's
  latest decision (BUY for BUY/STRONG_BUY, SELL for SELL/STRONG_SELL) has origin ``SIGNAL`` and carries the
  decision's id and correlation id; otherwise ``REBALANCE``.

Where solves run is the ``optimiser_worker`` setting (:mod:`quorum_portfolio.solver`). ``inline``: in
the tick that asked for them, so their weights serve that tick's rebalance (reproducible: backtests,
replays, the embedded desk). ``early``: the same weights in the same tick, but the solve the rebalance
is expected to ask for starts in a worker process at the bar's ``BAR_CLOSE`` tick. ``process``: in a
worker process, so no record waits for a solve; the weights land at the first tick after the solve
finished, and a calendar rebalance that asked for the solve waits for it and runs then (a risk-state
rebalance does not wait).

On the lockstep bus (``quorum_common.bus.lockstep``) bars are released at ``BAR_CLOSE``, fills at
``VOTE`` and decisions and the mandate just before ``REBALANCE``, so the rebalance sees every input of
bar time ``t`` and nothing later. Without lockstep any interleaving is handled (a late bar neither
marks nor enters the history; unknown symbols and early ticks do no harm).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from quorum_common.bus.base import Publisher
from quorum_common.bus.message import Message
from quorum_common.engine import Engine, envelope, event_id
from quorum_common.event_dates import day_ns
from quorum_common.phases import PHASE_OFFSETS_NS, bar_time
from quorum_common.runtime.clock import EventClock
from quorum_common.universe import INSTRUMENTS

from quorum_portfolio.config import PortfolioSettings
from quorum_portfolio.exposure import drawdown_scale, holdings_volatility, scaled, volatility_scale
from quorum_portfolio.ledger import Ledger
from quorum_portfolio.mandate import Mandate
from quorum_portfolio.optimiser import Problem
from quorum_portfolio.prices import PriceHistory
from quorum_portfolio.rebalance import NS_PER_DAY, Trade, max_drift, plan_trades, rebalance_trigger
from quorum_portfolio.session_closes import SessionCloses
from quorum_portfolio.solver import Solved, SolveRequest, make_solver
from quorum_portfolio.tilt import (
    Decision,
    RiskLimits,
    Tilt,
    fresh_decisions,
    tilt_weights,
    tilts,
    within_limits,
)
from quorum_portfolio.trading_interval import interval_caps

log = logging.getLogger(__name__)

TARGETS_TOPIC = "portfolio.targets"
ORDERS_TOPIC = "orders.proposed"
NO_TILT = Tilt(None, None)
"""The tilt of a symbol the session's weights do not name: a zero target (a position they no longer hold)."""
SNAPSHOTS_TOPIC = "portfolio.snapshots"
FINAL_STATUSES = frozenset({"REJECTED", "FILLED", "CANCELLED", "EXPIRED"})


@dataclass(frozen=True)
class InFlight:
    """An order proposed and not yet finished."""

    symbol: str
    side: str
    notional: float
    bars: int
    """How many bars of its symbol the engine had taken in when it proposed the order."""


class PortfolioEngine(Engine):
    """Keeps the ledger and turns targets into proposed orders at each rebalance tick."""

    inputs = ("mandate.compiled", "md.bars", "exec.fills", "signals.decisions", "sys.clock", "risk.decisions",
              "exec.reports", "control.state")
    rebuilds_from_history = True  # its state and outputs are all a record changes
    state_version = 4  # 2: the exposure scale (the volatility, the drawdown lock in force); 3: caps by
    # bar interval; 4: orders in flight time out by their symbol's bars

    def __init__(self, settings: PortfolioSettings, publisher: Publisher, clock: EventClock | None = None) -> None:
        super().__init__(publisher, clock)
        self.settings = settings
        self.acts_on = (settings.rebalance_tick,)  # sessions: targets, orders, snapshots
        self.ledger = Ledger()
        self.history = PriceHistory(settings.lookback_bars + 1)
        self.mandate: Mandate | None = None
        self.base_weights: dict[str, float] = {}
        self.targets: dict[str, float] = {}
        self.decisions: dict[str, Decision] = {}
        self.inflight: dict[str, InFlight] = {}
        self.trading_state = "ACTIVE"
        self.risk_limits = RiskLimits()
        """The risk service's position and gross exposure limits and drawdown lock in force (``control.state``)."""
        self.volatility: float | None = None
        """The tilted targets' annualised volatility over the trailing sessions at the last rebalance tick (what the
        volatility target scales by); None before there are targets and when the mandate sets no target."""
        self.exposure_scale: float | None = None
        """The scale of the targets at the last rebalance tick (:meth:`_exposure_scale`); None before any targets."""
        self._state_sequence = -1
        self.last_rebalance_ts: int | None = None
        self.pending_trigger: str | None = None
        self.sessions = 0
        self.bar_counts: dict[str, int] = {}
        """Bars taken in per symbol (a repeated bar time counts once): what orders in flight time out by."""
        self.session_closes = SessionCloses(settings.volatility_window_bars + 1)
        """Each symbol's close at the last sessions: what the targets' volatility is measured on."""
        self.last_solve_session: int | None = None
        self.snapshot_sequence = 0
        self.fallbacks = 0
        self._published_targets: dict[str, float] = {}
        self.asset_caps: dict[str, float] | None = None
        """The instrument caps of the last solve that landed (the mandate's, cut by bar interval); None before one."""
        self._caps_of: tuple[Mandate, dict[str, float] | None, Problem] | None = None
        """The mandate and instrument caps :meth:`_mandate_caps` last built its problem from, and that problem."""
        self.solver = make_solver(settings.optimiser_worker)
        self._trade_from_ns = None if settings.trade_from is None else day_ns(settings.trade_from)

    def handle(self, msg: Message) -> None:
        """Dispatch by topic."""
        handler = {
            "mandate.compiled": self._on_mandate, "md.bars": self._on_bar, "exec.fills": self._on_fill,
            "signals.decisions": self._on_decision, "sys.clock": self._on_clock,
            "risk.decisions": self._on_risk_decision, "exec.reports": self._on_report,
            "control.state": self._on_state,
        }.get(msg.topic)
        if handler is not None:
            handler(msg)

    def checkpoint(self) -> bytes | None:
        """The engine's state (see :meth:`Engine.checkpoint`); None while a solve runs in the optimiser's worker."""
        return super().checkpoint() if self.solver.settled else None

    def restore(self, data: bytes) -> None:
        """Go on from a checkpoint (see :meth:`Engine.restore`); the solver it brings starts its own worker when it
        needs one, and the one it replaces is stopped."""
        replaced = self.solver
        super().restore(data)
        if self.solver is not replaced:
            replaced.close()

    def close(self) -> None:
        """Stop the optimiser's worker process, if any."""
        self.solver.close()

    # ----- inputs -------------------------------------------------------------------------------------

    def _on_mandate(self, msg: Message) -> None:
        try:
            mandate = Mandate.from_record(msg.value)
        except (KeyError, TypeError, ValueError) as exc:
            self.publisher.dead_letter(msg.topic, msg.value, "invalid compiled mandate", key=msg.key, error=str(exc))
            return
        if self.settings.mandate_id and mandate.mandate_id != self.settings.mandate_id:
            return
        current = self.mandate
        if current is not None and current.mandate_id == mandate.mandate_id and mandate.version <= current.version:
            return
        if current is None:
            self.ledger.deposit(mandate.capital)
        self.mandate = mandate
        self.pending_trigger = "INITIAL" if current is None else "MANDATE_CHANGE"
        self.base_weights = {}
        self.asset_caps = None
        log.info("mandate followed", extra={"mandate_id": mandate.mandate_id, "version": mandate.version})

    def _on_bar(self, msg: Message) -> None:
        bar = msg.value
        close = bar["close"]
        if not (math.isfinite(close) and close > 0):
            self.publisher.dead_letter(msg.topic, bar, "bar close must be positive and finite", key=msg.key)
            return
        symbol, last = bar["symbol"], self.history.last_ts(bar["symbol"])
        if self.history.add(symbol, msg.ts_event, close):
            self.ledger.mark(symbol, close)
            if last != msg.ts_event:
                self.bar_counts[symbol] = self.bar_counts.get(symbol, 0) + 1

    def _on_fill(self, msg: Message) -> None:
        fill = msg.value
        symbol = fill["symbol"]
        asset = self.mandate.asset(symbol) if self.mandate else None
        sector = asset.sector if asset else fill.get("sector") or "UNKNOWN"
        asset_class = asset.asset_class if asset else fill["asset_class"]
        oversold = self.ledger.oversold_fills
        try:
            self.ledger.apply_fill(fill["fill_id"], symbol, fill["side"], fill["quantity"], fill["price"],
                                   fill["fee"], sector, asset_class)
        except ValueError as exc:
            self.publisher.dead_letter(msg.topic, fill, "invalid fill", key=msg.key, error=str(exc))
            return
        if self.ledger.oversold_fills > oversold:
            log.warning("fill crossed the position through zero", extra={"symbol": symbol, "fill": fill["fill_id"]})
        if fill["is_final"]:
            self.inflight.pop(fill["client_order_id"], None)

    def _on_decision(self, msg: Message) -> None:
        d = msg.value
        previous = self.decisions.get(d["symbol"])
        if previous is None or msg.ts_event >= previous.ts_event:
            self.decisions[d["symbol"]] = Decision(d["decision_id"], d["correlation_id"], d["action"],
                                                   d["combined_score"], msg.ts_event)

    def _on_risk_decision(self, msg: Message) -> None:
        if msg.value["verdict"] == "REJECTED":
            self.inflight.pop(msg.value["client_order_id"], None)

    def _on_report(self, msg: Message) -> None:
        if msg.value["is_final"] or msg.value["status"] in FINAL_STATUSES:
            self.inflight.pop(msg.value["client_order_id"], None)

    def _on_state(self, msg: Message) -> None:
        state = msg.value
        if state["sequence"] <= self._state_sequence:
            return
        self._state_sequence = state["sequence"]
        limits = RiskLimits.from_state(state) if state["limits"] else self.risk_limits
        limits_changed = limits != self.risk_limits and self.risk_limits != RiskLimits()  # not the first ones
        self.risk_limits = limits
        if state["state"] != self.trading_state or limits_changed:
            self.trading_state = state["state"]
            self.pending_trigger = "RISK_STATE"
            log.info("trading state followed", extra={"state": self.trading_state, "reason": state["reason"]})

    def _on_clock(self, msg: Message) -> None:
        if self.mandate is None:
            return
        if msg.value["kind"] == self.settings.rebalance_tick:
            self._session(msg.ts_event, self.mandate)
        elif msg.value["kind"] == "BAR_CLOSE" and self.solver.starts_early:
            self._solve_early(msg.ts_event, self.mandate)

    # ----- the rebalance tick ---------------------------------------------------------------------------

    def _session(self, ts: int, mandate: Mandate) -> None:
        self.sessions += 1
        self.session_closes.record({a.symbol: c for a in mandate.universe
                                    if a.tradable and (c := self.ledger.last_price(a.symbol)) is not None})
        self._expire_inflight()
        calendar_trigger = self._calendar_trigger(mandate, ts)
        if not self.solver.busy and self._solve_due(calendar_trigger, self.sessions, ts):
            request = self._solve_request(ts, mandate, self.pending_trigger or calendar_trigger)
            if request is None:
                log.info("not enough history to optimise", extra={"ts": ts})
            else:
                self.solver.submit(request)
                self.last_solve_session = self.sessions
        solved = self._land(self.solver.take(), ts) if self._solve_may_land() else None
        if solved is None and self.solver.busy and self.pending_trigger is None and calendar_trigger is not None:
            # A calendar rebalance is done with fresh weights: it waits while a solve runs (worker mode).
            self._snapshot(ts, mandate)
            return
        if self.base_weights:
            decisions = fresh_decisions(self.decisions, ts, int(self.settings.decision_max_age_days * NS_PER_DAY))
            self.targets = unscaled = self._tilted(decisions, mandate)
            self.exposure_scale = self._exposure_scale(mandate)
            self.targets = scaled(self.targets, self.exposure_scale)
            if self.trading_state == "REDUCING":
                self.targets = scaled(self.targets, self.settings.reducing_target_scale)
            if solved is not None:
                self._publish_targets(ts, mandate, solved, self.pending_trigger or calendar_trigger or "OTHER")
            current = {s: w for s, w in self.ledger.weights().items() if self._tradable(s)}
            trigger = self.pending_trigger or rebalance_trigger(mandate.rebalance, ts, self.last_rebalance_ts,
                                                                max_drift(current, self.targets))
            if trigger is not None and self.trading_state != "HALTED" and not self.warming_up(ts):
                # the tilt's shares, against the weights no decision tilted (before the scales, common to both)
                self._rebalance(ts, mandate, trigger, tilts(unscaled, self._tilted({}, mandate), decisions))
        self._snapshot(ts, mandate)

    def _tilted(self, decisions: dict[str, Decision], mandate: Mandate) -> dict[str, float]:
        """The optimiser's weights tilted by ``decisions``, within the mandate's caps, the cash buffer and the risk
        limits in force (before the exposure scales)."""
        return within_limits(tilt_weights(self.base_weights, decisions, self.settings.tilt, self._mandate_caps(mandate),
                                          self.settings.strong_sell_to_zero, 1.0 - self.settings.cash_buffer),
                             self.risk_limits)

    def _exposure_scale(self, mandate: Mandate) -> float:
        """How much of the tilted targets to hold: the drawdown budget left before the lock in force times the
        volatility target's scale, on the targets' volatility measured now (:mod:`quorum_portfolio.exposure`);
        1 without ``exposure_scaling``."""
        if not self.settings.exposure_scaling:
            return 1.0
        if mandate.target_volatility is not None:
            symbols = sorted(self.targets)
            self.volatility = holdings_volatility(
                self.session_closes.returns(symbols), np.array([self.targets[s] for s in symbols]),
                self.settings.periods_per_year, self.settings.volatility_short_window_bars)
        return drawdown_scale(self.ledger.drawdown, mandate.derisk_drawdown, self.risk_limits.drawdown_lock) * \
            volatility_scale(self.volatility, mandate.target_volatility)

    def _solve_may_land(self) -> bool:
        """Whether ``solve_lag_sessions`` have passed since the last solve was asked for."""
        return self.last_solve_session is None or \
            self.sessions >= self.last_solve_session + self.settings.solve_lag_sessions

    def warming_up(self, ts: int) -> bool:
        """Whether ``ts`` is before the ``trade_from`` date: the books and solves go on, no order is proposed."""
        return self._trade_from_ns is not None and ts < self._trade_from_ns

    def _calendar_trigger(self, mandate: Mandate, ts: int) -> str | None:
        """The calendar's reason to rebalance at the rebalance tick ``ts`` (``INITIAL``, ``CALENDAR``); None while
        warming up, when no rebalance runs."""
        return None if self.warming_up(ts) else rebalance_trigger(mandate.rebalance, ts, self.last_rebalance_ts, 0.0)

    def _solve_due(self, calendar_trigger: str | None, session: int, ts: int) -> bool:
        """Whether the rebalance tick ``ts`` (session number ``session``) asks for a solve: the first one, one for a
        pending or calendar rebalance, or ``reoptimise_bars`` sessions after the last (alone while warming up)."""
        if not self.base_weights or calendar_trigger or (self.pending_trigger and not self.warming_up(ts)):
            return True
        return self.last_solve_session is None or session - self.last_solve_session >= self.settings.reoptimise_bars

    def _solve_early(self, ts: int, mandate: Mandate) -> None:
        """At ``BAR_CLOSE`` (every bar of the bar time is in): start the solve the coming rebalance tick
        will ask for, as far as is known now (an ``early`` solver checks it is the same solve then)."""
        offset = PHASE_OFFSETS_NS.get(self.settings.rebalance_tick)
        if offset is None or self.solver.busy:
            return
        rebalance_ts = bar_time(ts) + offset
        calendar_trigger = self._calendar_trigger(mandate, rebalance_ts)
        if self._solve_due(calendar_trigger, self.sessions + 1, rebalance_ts):
            request = self._solve_request(rebalance_ts, mandate, self.pending_trigger or calendar_trigger)
            if request is not None:
                self.solver.prestart(request)

    def _mandate_caps(self, mandate: Mandate) -> Problem:
        """:meth:`_caps` of ``mandate`` without returns, with the instrument caps of the last solve that landed,
        built once per mandate and solve (every rebalance tick tilts with it, and a problem's empty returns frame
        alone costs about 0.1 ms)."""
        cached = self._caps_of
        if cached is None or cached[0] is not mandate or cached[1] is not self.asset_caps:
            problem = self._caps(mandate)
            if self.asset_caps is not None:
                problem = replace(problem, asset_caps=self.asset_caps)
            self._caps_of = cached = (mandate, self.asset_caps, problem)
        return cached[2]

    def _caps(self, mandate: Mandate, returns: pd.DataFrame | None = None) -> Problem:
        """The mandate's constraints (and ``returns``, when given) as an optimiser problem; with ``returns``, an
        instrument with bars only every few of them has its cap cut by that interval (``size_by_bar_interval``)."""
        tradable = [a for a in mandate.universe if a.tradable]
        asset_caps = {a.symbol: mandate.asset_cap(a) for a in tradable}
        if returns is not None and self.settings.size_by_bar_interval:
            asset_caps = interval_caps(asset_caps, self.history.bar_intervals(list(returns.columns), returns.index))
        return Problem(
            returns=returns if returns is not None else pd.DataFrame(),
            sectors={a.symbol: a.sector for a in tradable},
            asset_classes={a.symbol: a.asset_class for a in tradable},
            risk_measure=mandate.risk_measure, objective=mandate.objective, upper_risk=mandate.upper_risk,
            cdar_alpha=mandate.cdar_alpha or 0.05,
            risk_free_rate=mandate.risk_free_rate / self.settings.periods_per_year,
            sector_caps=mandate.sector_caps, asset_class_caps=mandate.asset_class_caps,
            min_weights=mandate.min_weights, asset_caps=asset_caps,
        )

    def _solve_request(self, ts: int, mandate: Mandate, trigger: str | None) -> SolveRequest | None:
        """A solve on the trailing returns up to the bar time of ``ts``; None while fewer than two assets
        have history."""
        bars = min(self.settings.lookback_bars, mandate.rebalance.lookback_days or self.settings.lookback_bars)
        symbols = [a.symbol for a in mandate.universe if a.tradable]
        returns = self.history.returns(symbols, bar_time(ts), bars, self.settings.min_history_bars)
        if returns.shape[1] < 2:
            return None
        return SolveRequest(self._caps(mandate, returns), self.settings.solvers, self.base_weights or None,
                            self.settings.periods_per_year, ts, trigger, mandate.key)

    def _land(self, solved: Solved | None, ts: int) -> Solved | None:
        """Adopt a finished solve's weights; one that lands after the tick that asked for it brings that
        tick's rebalance trigger along. A solve for a mandate no longer followed is dropped."""
        if solved is None:
            return None
        if self.mandate is None or solved.request.mandate_key != self.mandate.key:
            log.info("solve for a superseded mandate dropped", extra={"solve_ts": solved.request.ts})
            return None
        self.fallbacks += int(solved.result.fallback)
        self.base_weights = solved.result.weights
        self.asset_caps = solved.request.problem.asset_caps
        if solved.request.trigger is not None and self.pending_trigger is None and solved.request.ts != ts:
            self.pending_trigger = solved.request.trigger
        return solved

    def _publish_targets(self, ts: int, mandate: Mandate, solved: Solved, trigger: str) -> None:
        result, lookback = solved.result, solved.request.lookback
        pid = self.settings.portfolio_id
        entries = [{"symbol": s, "weight": w, "previous_weight": self._published_targets.get(s),
                    "sector": self._attr(s, "sector"), "asset_class": self._attr(s, "asset_class")}
                   for s, w in sorted(self.targets.items())]
        self.publisher.publish(TARGETS_TOPIC, {
            **envelope(ts, TARGETS_TOPIC, pid),
            "portfolio_id": pid, "mandate_id": mandate.mandate_id, "mandate_version": mandate.version,
            "targets": entries, "cash_weight": max(0.0, 1.0 - sum(self.targets.values())),
            "objective": mandate.objective, "risk_measure": mandate.risk_measure,
            "expected_return": result.expected_return, "expected_risk": result.expected_risk,
            "expected_sharpe": result.expected_sharpe, "solve_ms": result.solve_ms,
            "solver_status": result.status, "fallback": result.fallback, "trigger": trigger,
            "lookback_bars": lookback,
        }, key=pid)
        self._published_targets = dict(self.targets)

    def _rebalance(self, ts: int, mandate: Mandate, trigger: str, tilted: dict[str, Tilt]) -> None:
        busy = {f.symbol for f in self.inflight.values()} | self._stale(ts)
        holdings = {s: p.quantity for s, p in self.ledger.positions.items() if self._tradable(s) and s not in busy}
        targets = {s: w for s, w in self.targets.items() if self._tradable(s) and s not in busy}
        prices = {s: p for s in set(holdings) | set(targets) if (p := self.ledger.last_price(s)) is not None}
        committed = sum(f.notional for f in self.inflight.values() if f.side == "BUY")
        nav, max_gross = self.ledger.nav, self.risk_limits.max_gross_exposure
        held = sum(abs(p.market_value) for p in self.ledger.positions.values())
        buy_room = None if max_gross is None else max_gross * nav - held - committed
        trades = plan_trades(targets, holdings, prices, nav, self.ledger.cash - committed,
                             mandate.rebalance.min_trade_value, self._step, mandate.allow_short,
                             mandate.max_order_notional, buy_room)
        for trade in trades:
            if self.trading_state == "REDUCING" and not trade.reduces_risk:
                continue  # reduce-only: the risk service would refuse it anyway
            self._propose(ts, mandate, trade, trigger, tilted.get(trade.symbol, NO_TILT))
        self.last_rebalance_ts = ts
        self.pending_trigger = None

    def _stale(self, ts: int) -> set[str]:
        """Symbols whose last bar is older at ``ts`` than the risk service's ``stale_price_ns`` (it would refuse
        their orders): left out of this rebalance, their gap is traded once a fresh bar is in (e.g. monthly
        BTC-USD bars in a daily desk)."""
        limit = self.risk_limits.stale_price_ns
        if limit is None:
            return set()
        return {s for s in set(self.targets) | set(self.ledger.positions)
                if (last := self.history.last_ts(s)) is not None and ts - last > limit}

    def _propose(self, ts: int, mandate: Mandate, trade: Trade, trigger: str, tilt: Tilt) -> None:
        pid = self.settings.portfolio_id
        cid = event_id("order", pid, bar_time(ts), trade.symbol, trade.side)
        if cid in self.inflight:
            return
        decision = self.decisions.get(trade.symbol)
        from_signal = decision is not None and decision.action in (
            ("BUY", "STRONG_BUY") if trade.side == "BUY" else ("SELL", "STRONG_SELL"))
        asset = mandate.asset(trade.symbol)
        known = INSTRUMENTS.get(trade.symbol)
        self.publisher.publish(ORDERS_TOPIC, {
            **envelope(ts, ORDERS_TOPIC, cid, correlation_id=decision.correlation_id if from_signal else None),
            "client_order_id": cid, "portfolio_id": pid,
            "decision_id": decision.decision_id if from_signal else None,
            "symbol": trade.symbol, "side": trade.side, "quantity": trade.quantity, "order_type": "MARKET",
            "limit_price": None, "time_in_force": "DAY", "reference_price": trade.price, "notional": trade.notional,
            "origin": "SIGNAL" if from_signal else "REBALANCE",
            "reason": (f"{trigger} rebalance: weight {trade.current_weight:.4f} -> target {trade.target_weight:.4f}"
                       + (f" ({decision.action} {decision.score:+.2f})" if from_signal else "")),
            "asset_class": self._attr(trade.symbol, "asset_class"), "sector": self._attr(trade.symbol, "sector"),
            "reduces_risk": trade.reduces_risk, "target_weight": trade.target_weight,
            "venue": (asset.venue if asset and asset.venue else known.venue if known else None),
            "exec_algo": self.settings.exec_algo,
            "tilt_decision_id": tilt.decision_id, "tilt_share": tilt.share,
        }, key=cid)
        self.inflight[cid] = InFlight(trade.symbol, trade.side, trade.notional, self.bar_counts.get(trade.symbol, 0))

    def _snapshot(self, ts: int, mandate: Mandate) -> None:
        pid = self.settings.portfolio_id
        led = self.ledger
        nav = led.nav
        positions = [{
            "symbol": s, "quantity": p.quantity, "avg_cost": p.avg_cost, "last_price": p.last_price,
            "market_value": p.market_value, "unrealised_pnl": p.unrealised_pnl, "realised_pnl": p.realised_pnl,
            "weight": p.market_value / nav if nav > 0 else 0.0, "target_weight": self.targets.get(s),
            "sector": p.sector, "asset_class": p.asset_class,
        } for s, p in sorted(led.positions.items()) if p.quantity]
        self.snapshot_sequence += 1
        self.publisher.publish(SNAPSHOTS_TOPIC, {
            **envelope(ts, SNAPSHOTS_TOPIC, pid),
            "portfolio_id": pid, "sequence": self.snapshot_sequence, "base_currency": mandate.base_currency,
            "cash": led.cash, "nav": nav, "peak_nav": led.peak_nav, "drawdown": led.drawdown,
            "realised_pnl": led.realised_pnl, "unrealised_pnl": led.unrealised_pnl, "fees_paid": led.fees_paid,
            "positions": positions, "gross_exposure": led.gross_exposure(), "net_exposure": led.net_exposure(),
            "exposure_by_sector": led.exposure_by("sector"), "exposure_by_asset_class": led.exposure_by("asset_class"),
            "open_orders": len(self.inflight), "last_fill_id": led.last_fill_id,
            "exposure_scale": self.exposure_scale,
        }, key=pid)

    # ----- helpers ------------------------------------------------------------------------------------

    def _expire_inflight(self) -> None:
        timeout = self.settings.inflight_timeout_bars
        for cid in [c for c, f in self.inflight.items() if self.bar_counts.get(f.symbol, 0) - f.bars >= timeout]:
            log.warning("order unanswered; no longer blocks its symbol", extra={"client_order_id": cid})
            del self.inflight[cid]

    def _tradable(self, symbol: str) -> bool:
        asset = self.mandate.asset(symbol) if self.mandate else None
        if asset is not None:
            return asset.tradable
        known = INSTRUMENTS.get(symbol)
        return known is not None and known.tradable

    def _attr(self, symbol: str, name: str) -> str:
        asset = self.mandate.asset(symbol) if self.mandate else None
        if asset is not None:
            return getattr(asset, name)
        pos = self.ledger.positions.get(symbol)
        return getattr(pos, name) if pos else "UNKNOWN"

    def _step(self, symbol: str) -> float:
        fractional = self._attr(symbol, "asset_class").casefold() in {
            c.casefold() for c in self.settings.fractional_asset_classes}
        return self.settings.fractional_step if fractional else 1.0
