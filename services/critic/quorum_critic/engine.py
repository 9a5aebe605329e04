"""The critic engine: measures execution and agents, reports each period, and only ever tightens limits.

Inputs and what they feed:

- ``signals.decisions``: remembered (for tracing fills) and scored per agent (:mod:`.attribution`).
- ``exec.fills``: slippage (:mod:`.slippage`), fees, turnover, position shares of the agents.
- ``exec.reports``: orders that reached a final status, and rejects.
- ``portfolio.snapshots``: agent PnL, NAV series (rolling Sharpe), drawdown against the soft limit.
- ``regime.state``: the regime in force; a shift into a tightening label (HIGH_VOL, CRISIS) tightens. Before the
  settings' ``trade_from`` (a warm-up) nothing tightens: the first regime record from that date tightens once when the
  desk starts trading in a tightening label, so the limits a desk starts with do not depend on its warm-up's length.
- ``mandate.compiled``: ``max_drawdown`` (soft limit = ``soft_drawdown_fraction`` of it) and the
  base risk limits behind the absolute values of a tightening.
- ``sys.clock``: the ``report_tick`` (MONTH_END by default) publishes ``critic.reports``.

A fill, a final report or a snapshot delivered again (at-least-once delivery repeats what a restarted service had
handled after its last commit) changes nothing: fills count once by ``fill_id``, final reports once per order, and
a snapshot no newer than the latest one handled is stale.

A tightening publishes ``TIGHTEN_LIMITS`` on ``control.commands`` (role SYSTEM, issued by
``critic``) stamped with the triggering event's time; a drawdown breach tightens once per crossing
(re-armed when the drawdown is back under the soft limit).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any, NamedTuple

from quorum_common.bus.base import Publisher
from quorum_common.bus.message import Message
from quorum_common.engine import Engine, envelope
from quorum_common.event_dates import day_ns
from quorum_common.recent_ids import RecentIds
from quorum_common.runtime.clock import EventClock

from quorum_critic.attribution import AgentLedger, Votes, fill_shares, share_votes, target_shares
from quorum_critic.config import CriticSettings
from quorum_critic.limits import LimitRatchet
from quorum_critic.performance import NavSeries
from quorum_critic.report import ReportWindow, recommendations
from quorum_critic.slippage import SIDE_SIGN, fill_slippage

COMMANDS_TOPIC = "control.commands"
REPORTS_TOPIC = "critic.reports"
CRITIC_ID = "critic"


class TracedDecision(NamedTuple):
    """What a fill traced back to a decision needs of it (slippage, agent shares): a small part of the decision,
    which keeps the decision cache, and so the engine's checkpoints, small and quick to write."""

    reference_price: float
    votes: Votes


class CriticEngine(Engine):
    """Reviews execution quality and agent performance; tightens limits on regime shifts and drawdowns."""

    inputs = ("exec.fills", "exec.reports", "portfolio.snapshots", "regime.state", "signals.decisions",
              "mandate.compiled", "sys.clock")
    rebuilds_from_history = True  # its state and outputs are all a record changes
    state_version = 3  # 2: decisions cached as TracedDecision tuples; 3: _trading

    def __init__(self, settings: CriticSettings, publisher: Publisher, clock: EventClock | None = None) -> None:
        super().__init__(publisher, clock)
        self.settings = settings
        self.acts_on = (settings.report_tick,)  # the periodic report
        self.ledger = AgentLedger()
        self.navs = NavSeries(settings.sharpe_window, settings.sharpe_min_periods, settings.periods_per_year)
        self.ratchet = LimitRatchet(settings.tighten_factors, settings.min_limit_scale)
        self.window = ReportWindow()
        self._decisions: OrderedDict[str, TracedDecision] = OrderedDict()
        self._max_drawdown = settings.default_max_drawdown
        self._base_limits: dict[str, Any] | None = None
        self._regime = "UNKNOWN"
        self._trade_from_ns = None if settings.trade_from is None else day_ns(settings.trade_from)
        self._trading = self._trade_from_ns is None
        """Whether a regime record from ``trade_from`` on has been handled (the warm-up is over)."""
        self._drawdown = 0.0
        self._drawdown_armed = True
        self._portfolio_id = settings.portfolio_id
        self._commands = 0
        self._fill_ids = RecentIds()
        """Fills counted lately (at-least-once delivery may repeat one: it is counted once)."""
        self._finished = RecentIds()
        """Client order ids whose final report was counted lately (once, however often it is delivered)."""
        self._snapshot_at: tuple[int, set[str]] = (-1, set())
        """Event time of the latest snapshot handled and the ids of those handled at that time: a snapshot delivered
        again, or one older than the latest, is stale and changes nothing."""
        self._handlers = {
            "signals.decisions": self._on_decision, "exec.fills": self._on_fill, "exec.reports": self._on_report,
            "portfolio.snapshots": self._on_snapshot, "regime.state": self._on_regime,
            "mandate.compiled": self._on_mandate, "sys.clock": self._on_clock,
        }

    def handle(self, msg: Message) -> None:
        """Dispatch a record to its topic's handler."""
        self.window.touch(msg.ts_event)
        self._handlers[msg.topic](msg)

    def _ours(self, record: dict[str, Any]) -> bool:
        """Whether a portfolio-scoped record belongs to the reviewed portfolio (by default the first one seen)."""
        if self._portfolio_id is None:
            self._portfolio_id = record["portfolio_id"]
        return record["portfolio_id"] == self._portfolio_id

    def _on_decision(self, msg: Message) -> None:
        decision = msg.value
        traced = TracedDecision(decision["reference_price"], share_votes(decision))
        for key in (decision["decision_id"], decision["event_id"]):
            self._decisions[key] = traced
            self._decisions.move_to_end(key)
        while len(self._decisions) > self.settings.decision_cache:
            self._decisions.popitem(last=False)
        self.ledger.on_decision(decision)

    def _on_fill(self, msg: Message) -> None:
        fill = msg.value
        if not self._ours(fill):
            return
        if not (all(math.isfinite(fill[k]) and fill[k] > 0 for k in ("quantity", "price", "notional"))
                and math.isfinite(fill["fee"])):
            self.publisher.dead_letter(msg.topic, fill, "invalid fill quantity, price, notional or fee", key=msg.key,
                                       error=f"quantity={fill['quantity']!r} price={fill['price']!r} "
                                             f"notional={fill['notional']!r} fee={fill['fee']!r}")
            return
        if not self._fill_ids.add(fill["fill_id"]):
            return
        decision = self._decisions.get(fill["decision_id"] or "") or self._decisions.get(fill["correlation_id"])
        self.window.slippage.add(fill_slippage(fill, decision.reference_price if decision else None))
        self.window.fees += fill["fee"]
        self.window.notional += abs(fill["notional"])
        signed = SIDE_SIGN[fill["side"]] * fill["quantity"]
        if fill["tilt_share"] is not None:
            tilted_by = self._decisions.get(fill["tilt_decision_id"] or "")
            shares = target_shares(fill["tilt_share"], tilted_by.votes if tilted_by else None)
            self.ledger.on_fill(fill["symbol"], signed, fill["price"], shares, at_target=True,
                                leaves_quantity=fill["leaves_quantity"])
        else:
            self.ledger.on_fill(fill["symbol"], signed, fill["price"],
                                fill_shares(decision.votes if decision else None, fill["decision_id"] is not None))

    def _on_report(self, msg: Message) -> None:
        report = msg.value
        if not self._ours(report) or not report["is_final"] or not self._finished.add(report["client_order_id"]):
            return
        self.window.orders += 1
        self.window.rejects += int(report["status"] == "REJECTED")

    def _on_snapshot(self, msg: Message) -> None:
        snap = msg.value
        if not self._ours(snap):
            return
        if not (math.isfinite(snap["nav"]) and snap["nav"] > 0 and math.isfinite(snap["drawdown"])):
            self.publisher.dead_letter(msg.topic, snap, "invalid NAV or drawdown", key=msg.key,
                                       error=f"nav={snap['nav']!r} drawdown={snap['drawdown']!r}")
            return
        latest, ids = self._snapshot_at
        if snap["ts_event"] < latest or (snap["ts_event"] == latest and snap["event_id"] in ids):
            return
        self._snapshot_at = (snap["ts_event"], ids | {snap["event_id"]} if snap["ts_event"] == latest
                             else {snap["event_id"]})
        self.ledger.on_snapshot(snap["positions"])
        self.navs.add(snap["ts_event"], snap["nav"])
        self.window.navs.append(snap["nav"])
        self._drawdown = snap["drawdown"]
        soft = self._soft_limit()
        if soft is None:
            return
        if self._drawdown >= soft and self._drawdown_armed:
            self._drawdown_armed = False
            self._tighten(msg, f"drawdown {self._drawdown:.2%} crossed the soft limit {soft:.2%}")
        elif self._drawdown < soft:
            self._drawdown_armed = True

    def _soft_limit(self) -> float | None:
        return None if self._max_drawdown is None else self.settings.soft_drawdown_fraction * self._max_drawdown

    def _on_regime(self, msg: Message) -> None:
        state = msg.value
        if state["scope"] != self.settings.regime_scope:
            return
        previous, self._regime = self._regime, state["label"]
        if self._regime != previous:
            self.window.regime_shift |= previous != "UNKNOWN"
        tighten_on = self.settings.tighten_on_labels
        if not self._trading:
            if msg.ts_event < self._trade_from_ns:
                return  # the warm-up: the regime is followed, nothing tightens
            self._trading = True
            if self._regime in tighten_on:
                self._tighten(msg, f"trading starts in regime {self._regime}")
        elif self._regime in tighten_on and previous not in tighten_on:
            self._tighten(msg, f"regime shift from {previous} to {self._regime}")

    def _on_mandate(self, msg: Message) -> None:
        mandate = msg.value
        if not 0 < mandate["max_drawdown"] < 1:
            self.publisher.dead_letter(msg.topic, mandate, "max_drawdown outside (0, 1)", key=msg.key,
                                       error=f"max_drawdown={mandate['max_drawdown']!r}")
            return
        self._max_drawdown = mandate["max_drawdown"]
        self._base_limits = mandate["risk_limits"]

    def _tighten(self, cause: Message, reason: str) -> None:
        limits = self.ratchet.tighten(self._base_limits)
        if limits is None:
            self.window.notes.append(f"limits already at their floor; not tightened on: {reason}")
            return
        self._commands += 1
        ts = cause.ts_event
        self.publisher.publish(COMMANDS_TOPIC, {
            **envelope(ts, CRITIC_ID, "tighten", self._commands, correlation_id=cause.value["event_id"]),
            "desk": self.settings.desk,
            "command": "TIGHTEN_LIMITS",
            "issued_by": CRITIC_ID,
            "role": "SYSTEM",
            "reason": reason,
            "limits": limits,
            "mandate_document": None,
            "symbols": None,
            "source_service": CRITIC_ID,
        }, key=self.settings.desk)
        self.window.tightened = self.ratchet.report()

    def _on_clock(self, msg: Message) -> None:
        if msg.value["kind"] != self.settings.report_tick:
            return
        ts, w = msg.ts_event, self.window
        portfolio_id = self._portfolio_id or "unknown"
        sharpe = self.navs.sharpe()
        attribution = self.ledger.take_window()
        stats = w.slippage.stats()
        avg_nav = sum(w.navs) / len(w.navs) if w.navs else 0.0
        self.publisher.publish(REPORTS_TOPIC, {
            **envelope(ts, CRITIC_ID, "report", portfolio_id, correlation_id=msg.value["event_id"]),
            "portfolio_id": portfolio_id,
            "window_start_ns": w.start_ns if w.start_ns is not None else ts,
            "window_end_ns": ts,
            "fills": len(w.slippage.fills),
            "orders": w.orders,
            "rejects": w.rejects,
            "slippage": stats,
            "trades": w.slippage.trades(),
            "attribution": attribution,
            "rolling_sharpe": sharpe,
            "drawdown": self._drawdown,
            "fees_paid": w.fees,
            "turnover": w.notional / avg_nav if avg_nav > 0 else 0.0,
            "regime_label": self._regime,
            "regime_shift_detected": w.regime_shift,
            "recommendations": recommendations(self.settings, stats, attribution, self._regime, self._drawdown,
                                               self._soft_limit(), w.notes),
            "tightened_limits": w.tightened,
        }, key=portfolio_id)
        self.window = ReportWindow()
