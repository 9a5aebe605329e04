"""The risk engine: pre-trade checks on every proposed order and the persisted trading state machine.

Inputs: ``orders.proposed``, ``portfolio.snapshots``, ``control.commands``, ``control.state`` (its own
compacted topic: the record with the highest sequence is the state to resume in), ``mandate.compiled``
(limits and universe), ``md.bars`` (last price, average volume), ``exec.fills`` and ``exec.reports`` (to
retire orders in flight).

Outputs: a ``RiskDecisionMade`` on ``risk.decisions`` for every order; a ``SubmitOrder`` on
``orders.approved`` for each approved one; a ``TradingStateChanged`` on ``control.state`` (key = desk,
sequence + 1) whenever the state or the limits change. Records are stamped with the ``ts_event`` of the
message that caused them.

A refused control command (wrong role, loosening without RISK_OFFICER, invalid limits) changes nothing
and is dead-lettered on ``dlq.control.commands`` with the reason: the refusal is visible and auditable
without a record on ``control.state``, whose every record is a real state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from quorum_common.bus.base import Publisher
from quorum_common.bus.message import Message
from quorum_common.engine import Engine, envelope
from quorum_common.runtime.clock import EventClock

from quorum_risk.book import SIGN, Book
from quorum_risk.checks import CheckResult, Context, Member, Order, evaluate, is_reducing
from quorum_risk.config import RiskSettings
from quorum_risk.limits import Limits, LimitsError
from quorum_risk.state import (
    ACTIVE,
    LIMIT_COMMANDS,
    REDUCING,
    STATE_COMMANDS,
    CommandRefused,
    describe,
    limits_after,
    lock_code,
    target_state,
)
from quorum_risk.throttle import TokenBucket

ORDERS_IN, APPROVED, DECISIONS, COMMANDS, STATE = (
    "orders.proposed", "orders.approved", "risk.decisions", "control.commands", "control.state")


class RiskEngine(Engine):
    """The Python pre-trade layer of brief §5 (see :mod:`quorum_risk.checks` for the checks and their order)."""

    inputs = (ORDERS_IN, "portfolio.snapshots", COMMANDS, STATE, "mandate.compiled", "md.bars",
              "exec.fills", "exec.reports")

    def __init__(self, settings: RiskSettings, publisher: Publisher, clock: EventClock | None = None) -> None:
        super().__init__(publisher, clock)
        self.settings = settings
        self.state = ACTIVE
        self.reason = "initial state"
        self.sequence = 0
        self.limits: Limits | None = None
        self.universe: dict[str, Member] = {}
        self.book = Book(volume_window=settings.volume_window)
        self.decided: set[str] = set()
        self._bucket = TokenBucket()
        self._lock_at: float | None = None
        """Where a risk officer's resume beyond the lock level moved the lock (see :attr:`drawdown_lock_level`)."""
        self._handlers: dict[str, Callable[[Message], None]] = {
            ORDERS_IN: self._on_order, "portfolio.snapshots": self._on_snapshot, COMMANDS: self._on_command,
            STATE: self._on_state, "mandate.compiled": self._on_mandate, "md.bars": lambda m: self.book.on_bar(m.value),
            "exec.fills": lambda m: self.book.on_fill(m.value), "exec.reports": lambda m: self.book.on_report(m.value),
        }

    def handle(self, msg: Message) -> None:
        """Dispatch one message to its topic's handler."""
        handler = self._handlers.get(msg.topic)
        if handler is not None:  # e.g. sys.clock, which lockstep consumers may be handed
            handler(msg)

    def restore(self, messages: Iterable[Message]) -> None:
        """Rebuild state from compacted history (``control.state`` first, then mandate and snapshots) at start.

        The history was handled before the restart, so whatever the engine would publish now is discarded.
        """
        publisher, self.publisher = self.publisher, _Discard()
        try:
            for msg in sorted(messages, key=lambda m: (m.topic != STATE, m.ts_event)):
                self.on_message(msg)
        finally:
            self.publisher = publisher

    # --- state -------------------------------------------------------------------------------------------

    def _on_state(self, msg: Message) -> None:
        rec = msg.value
        if rec["desk"] != self.settings.desk or rec["sequence"] <= self.sequence:
            return  # our own echo, an older record, or another desk
        try:
            limits = Limits.from_map(rec["limits"]) if rec["limits"] else self.limits
        except LimitsError as exc:
            self.publisher.dead_letter(STATE, rec, "invalid limits map", key=msg.key, error=str(exc))
            return
        self.state, self.reason, self.sequence, self.limits = rec["state"], rec["reason"], rec["sequence"], limits
        self._lock_at = rec["drawdown_lock_at"]

    def _publish_state(self, ts: int, state: str, reason: str, changed_by: str,
                       command_event_id: str | None = None) -> None:
        previous, self.state, self.reason = self.state, state, reason
        self.sequence += 1
        desk = self.settings.desk
        self.publisher.publish(STATE, {
            **envelope(ts, "risk.state", desk, self.sequence, correlation_id=command_event_id),
            "desk": desk, "sequence": self.sequence, "state": state, "previous_state": previous,
            "reason": reason, "changed_by": changed_by, "command_event_id": command_event_id,
            "limits": self.limits.to_map() if self.limits else {},
            "drawdown": self.book.drawdown if self.book.nav is not None else None,
            "drawdown_lock_at": self._lock_at,
        }, key=desk)

    def _on_command(self, msg: Message) -> None:
        cmd = msg.value
        name, role = cmd["command"], cmd["role"]
        if name not in STATE_COMMANDS and name not in LIMIT_COMMANDS:
            return  # SET_MANDATE: compiled by the manager, arrives on mandate.compiled
        try:
            if cmd["desk"] != self.settings.desk:
                raise CommandRefused(f"{name} refused: desk {cmd['desk']!r} is not {self.settings.desk!r}")
            if name in STATE_COMMANDS:
                target, limits = target_state(name, role, self.state), self.limits
            elif self.limits is None:
                raise CommandRefused(f"{name} refused: no compiled mandate, no limits to change")
            else:
                target, limits = self.state, limits_after(name, role, self.limits, cmd["limits"])
        except CommandRefused as exc:
            self.publisher.dead_letter(COMMANDS, cmd, "command refused", key=msg.key, error=str(exc))
            return
        if target == self.state and limits == self.limits:
            return
        self.limits = limits
        if target == ACTIVE and self.state != ACTIVE:
            self._lock_at = self._lock_after_resume()
        self._publish_state(msg.ts_event, target, f"COMMAND: {describe(cmd)}", cmd["issued_by"], cmd["event_id"])

    def _on_mandate(self, msg: Message) -> None:
        rec = msg.value
        self.universe = {m["symbol"]: Member(m["sector"], m["asset_class"], m["max_weight"]) for m in rec["universe"]}
        if self.limits is not None and rec["version"] <= self.limits.mandate_version:
            return  # limits in force (possibly tightened since) already derive from this mandate
        self.limits = Limits.from_mandate(rec)
        self._publish_state(msg.ts_event, self.state, f"MANDATE: {rec['mandate_id']} v{rec['version']} limits applied"
                            if self.state == ACTIVE else self.reason, self.settings.approver, rec["event_id"])

    @property
    def drawdown_lock_level(self) -> float | None:
        """The drawdown at which the lock moves the desk from ACTIVE to REDUCING (None until a mandate gives limits).

        It is the ``drawdown_lock`` limit, except after a risk officer resumed trading with the drawdown at or beyond
        it: the officer accepted that loss, so the lock fires again ``drawdown_relock_step`` deeper than the
        drawdown at the resume, until the drawdown recovers under the limit (then the limit applies again; a
        ``LOCK_REARMED`` record says so). Kept on ``control.state`` (``drawdown_lock_at``), so a restarted service
        fires where the one before it would have.
        """
        if self.limits is None:
            return None
        return max(self.limits.drawdown_lock, self._lock_at or 0.0)

    def _lock_after_resume(self) -> float | None:
        """``_lock_at`` for a resume now: ``drawdown_relock_step`` beyond the drawdown when that is at or beyond the
        lock limit, else None (the limit)."""
        dd = self.book.drawdown
        if self.limits is None or dd < self.limits.drawdown_lock:
            return None
        return dd + self.settings.drawdown_relock_step

    def _on_snapshot(self, msg: Message) -> None:
        if not self.book.on_snapshot(msg.value) or self.limits is None or self.state != ACTIVE:
            return
        dd, lock, fires_at = self.book.drawdown, self.limits.drawdown_lock, self.drawdown_lock_level
        if dd < lock and self._lock_at is not None:
            self._lock_at = None
            self._publish_state(msg.ts_event, ACTIVE, f"LOCK_REARMED: drawdown {dd:.6g} back under lock {lock:.6g}",
                                self.settings.approver, msg.value["event_id"])
        elif dd >= fires_at:
            self._lock_at = None
            self._publish_state(msg.ts_event, REDUCING, f"DRAWDOWN_LOCK: drawdown {dd:.6g} >= lock {fires_at:.6g}",
                                self.settings.approver, msg.value["event_id"])

    # --- orders ------------------------------------------------------------------------------------------

    def _on_order(self, msg: Message) -> None:
        rec = msg.value
        member = self.universe.get(rec["symbol"])
        order = Order(rec["client_order_id"], rec["symbol"], SIGN[rec["side"]], rec["quantity"],
                      rec["reference_price"], rec["limit_price"], rec["order_type"], rec["ts_event"],
                      is_reducing(self.book, rec["symbol"], rec["side"], rec["quantity"]))
        if self.limits is None:
            results = [CheckResult("mandate", False, "OTHER", "no compiled mandate: limits unknown, fail closed")]
        else:
            ctx = Context(self.limits, self.state, lock_code(self.state, self.reason), self.book, self.universe,
                          self.decided, self._bucket.available(order.ts, self.limits.max_orders_per_minute),
                          self.settings.decimals_for(member.asset_class) if member else 0,
                          self.settings.price_decimals)
            results = evaluate(order, ctx)
        failed = next((r for r in results if not r.passed), None)
        self.decided.add(order.client_order_id)
        decision = self._decision(rec, order, results, failed)
        self.publisher.publish(DECISIONS, decision, key=order.client_order_id)
        if failed is None and self.limits is not None and member is not None:
            self._bucket.take(order.ts, self.limits.max_orders_per_minute)
            self.book.on_approved(order.client_order_id, order.symbol, rec["side"], order.quantity)
            self.publisher.publish(APPROVED, self._submit(rec, order, member, decision), key=order.client_order_id)

    def _decision(self, rec: Mapping[str, Any], order: Order, results: list[CheckResult],
                  failed: CheckResult | None) -> dict[str, Any]:
        code = failed.code if failed else "OK"
        return {
            **envelope(rec["ts_event"], "risk.decision", order.client_order_id, rec["event_id"], code,
                       correlation_id=rec["correlation_id"]),
            "client_order_id": order.client_order_id, "portfolio_id": rec["portfolio_id"],
            "order_event_id": rec["event_id"], "symbol": order.symbol, "side": rec["side"],
            "quantity": order.quantity, "notional": rec["notional"], "reduces_risk": order.reduces,
            "layer": "PYTHON", "verdict": "REJECTED" if failed else "APPROVED", "reason_code": code,
            "reason_detail": failed.detail if failed else "all checks passed", "trading_state": self.state,
            "checks": [r.record() for r in results], "check_latency_ns": None,
        }

    def _submit(self, rec: Mapping[str, Any], order: Order, member: Member, decision: Mapping[str, Any]) -> dict:
        return {
            **rec,
            **envelope(rec["ts_event"], "risk.approve", order.client_order_id, correlation_id=rec["correlation_id"]),
            "sector": member.sector, "asset_class": member.asset_class, "reduces_risk": order.reduces,
            "approved_by": self.settings.approver, "risk_state": self.state, "risk_decision_id": decision["event_id"],
        }


class _Discard:
    """A publisher that drops everything (restoring from history)."""

    def publish(self, topic: str, record: dict[str, Any], *, key: str | None = None) -> None:
        """Drop ``record``."""

    def dead_letter(self, topic: str, payload: bytes | dict[str, Any], reason: str, *, key: str | None = None,
                    error: str = "") -> None:
        """Drop the dead letter."""
