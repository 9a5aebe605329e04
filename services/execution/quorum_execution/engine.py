"""The execution engine: approved orders → (journal, trading state, sidecar) → venue → reports and fills.

For each ``SubmitOrder`` (``orders.approved``):

1. an id already in the journal is never sent again (redelivery, restart);
2. an invalid order, a risk-increasing order while ``REDUCING`` or ``HALTED``, or an order the sidecar
   refuses (when the gate is on) gets a ``REJECTED`` report and never reaches the venue;
3. otherwise the ``ACCEPTED`` report is published (the journal entry) *before* the venue call; a venue
   refusal follows as ``REJECTED``.

Bars (``md.bars``) drive the venue; its fills become ``OrderFilled`` records plus
``PARTIALLY_FILLED`` / ``FILLED`` reports, and its expiries ``EXPIRED`` reports. ``control.state``
``HALTED`` cancels every working order. ``exec.reports`` (the service's own history) rebuilds the
journal at start, and the orders it left working are tracked again (:meth:`ExecutionEngine.resume`):
at the first bar of their symbol the venue adopts each one and its later fills are reported as if the
service had never stopped; one the venue does not know ends with a final report.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from quorum_common.bus.base import Publisher
from quorum_common.bus.message import Message
from quorum_common.engine import Engine
from quorum_common.runtime.clock import EventClock

from quorum_execution.config import ExecutionSettings
from quorum_execution.costs import CostModel
from quorum_execution.gate import SidecarGate, open_sidecar_gate
from quorum_execution.journal import OrderJournal
from quorum_execution.paper import PaperExchange
from quorum_execution.reports import FILLS_TOPIC, REPORTS_TOPIC, OrderState, execution_report, fill_record
from quorum_execution.venue import Fill, Order, Venue, VenueEvent, order_problem

log = logging.getLogger(__name__)

BARS_TOPIC = "md.bars"


def paper_exchange(settings: ExecutionSettings) -> PaperExchange:
    """The paper exchange configured by ``settings``."""
    return PaperExchange(CostModel.from_settings(settings), settings.max_participation, settings.venue_name or "SIM")


def bar_problem(bar: dict) -> str | None:
    """Why a ``BarClosed`` record cannot drive a venue, or ``None``."""
    prices = {k: bar[k] for k in ("open", "high", "low", "close")}
    if not all(math.isfinite(v) and v > 0 for v in prices.values()):
        return f"prices must be finite and > 0: {prices}"
    if not (math.isfinite(bar["volume"]) and bar["volume"] >= 0):
        return f"volume must be finite and >= 0, got {bar['volume']}"
    return None


class ExecutionEngine(Engine):
    """Sends approved orders to one venue and reports every status change and fill."""

    inputs = ("orders.approved", BARS_TOPIC, "control.state", REPORTS_TOPIC)

    def __init__(self, settings: ExecutionSettings, publisher: Publisher, clock: EventClock | None = None,
                 venue: Venue | None = None, gate: SidecarGate | None = None) -> None:
        super().__init__(publisher, clock)
        self.settings = settings
        self.venue: Venue = venue if venue is not None else paper_exchange(settings)
        if gate is None and settings.sidecar_socket:
            gate = open_sidecar_gate(settings.sidecar_socket, settings.sidecar_deadline_ms)
        self.gate = gate
        self.journal = OrderJournal()
        self.working: dict[str, OrderState] = {}
        self.trading_state = "ACTIVE"
        self.duplicates = 0
        self._state_sequence = -1
        self.resuming: dict[str, tuple[OrderState, int, int]] = {}
        """Orders an earlier run left working, until the venue adopts them: state, fills so far, last report time."""
        self.untracked: list[str] = []
        """Orders an earlier run left working whose ``SubmitOrder`` record was not found: not tracked again."""

    def resume(self, order: dict[str, Any], reports: list[dict[str, Any]]) -> None:
        """Track again ``order`` (``SubmitOrder``), which an earlier run sent and whose last report (of ``reports``,
        its history in order) is not final: the venue adopts it at the first bar of its symbol (or a HALT)."""
        last = reports[-1]
        state = OrderState(order, self.venue.name, filled=last["filled_quantity"],
                           filled_notional=(last["avg_price"] or 0.0) * last["filled_quantity"],
                           venue_order_id=last["venue_order_id"], reports=len(reports))
        fills = sum(r["status"] in ("PARTIALLY_FILLED", "FILLED") for r in reports)
        self.resuming[state.client_order_id] = (state, fills, last["ts_event"])
        if self.gate is not None:
            self.gate.track(order, state.remaining)

    def _adopt(self, client_order_id: str, ts: int) -> None:
        """Have the venue adopt a resumed order; one it does not know ends here (never sent, or lost)."""
        state, fills, since = self.resuming.pop(client_order_id)
        ack = self.venue.adopt(Order.from_record(state.order), state.filled, state.avg_price, fills, since)
        if ack.accepted:
            state.venue_order_id = ack.venue_order_id or state.venue_order_id
            self.working[client_order_id] = state
            log.info("order resumed after a restart", extra={"client_order_id": client_order_id,
                                                             "filled": state.filled})
            return
        status = "CANCELLED" if state.filled > 0 else "REJECTED"
        self._report(state, status, ts, f"venue after a restart: {ack.reason}")
        if self.gate is not None:
            self.gate.done(client_order_id)

    def handle(self, msg: Message) -> None:
        """Dispatch one message by topic."""
        if msg.topic == "orders.approved":
            self._on_order(msg.value, msg.ts_event)
        elif msg.topic == BARS_TOPIC:
            self._on_bar(msg.value)
        elif msg.topic == "control.state":
            self._on_state(msg.value, msg.ts_event)
        elif msg.topic == REPORTS_TOPIC:
            self.journal.restore(msg.value)

    # ---- orders -------------------------------------------------------------------------------

    def _on_order(self, rec: dict, ts: int) -> None:
        cid = rec["client_order_id"]
        if cid in self.journal:
            self.duplicates += 1
            log.warning("order already in the journal, not sent again",
                        extra={"client_order_id": cid, "status": self.journal.status(cid)})
            return
        state = OrderState(rec, self.venue.name)
        refusal = self._refusal(rec)
        if refusal is not None:
            self._report(state, "REJECTED", ts, refusal)
            return
        self._report(state, "ACCEPTED", ts)  # the journal entry, before the venue call
        ack = self.venue.submit(Order.from_record(rec), ts)
        if not ack.accepted:
            self._report(state, "REJECTED", ts, f"venue: {ack.reason}")
            if self.gate is not None:
                self.gate.done(cid)
            return
        state.venue_order_id = ack.venue_order_id
        self.working[cid] = state

    def _refusal(self, rec: dict) -> str | None:
        problem = order_problem(Order.from_record(rec))
        if problem is not None:
            return f"invalid order: {problem}"
        if self.trading_state != "ACTIVE" and not rec["reduces_risk"]:
            return f"{self.trading_state}: risk-increasing order refused"
        return self.gate.check(rec) if self.gate is not None else None

    # ---- market data and venue events ----------------------------------------------------------

    def _on_bar(self, bar: dict) -> None:
        problem = bar_problem(bar)
        if problem is not None:
            self.publisher.dead_letter(BARS_TOPIC, bar, f"invalid bar: {problem}", key=bar["symbol"])
            return
        if self.gate is not None:
            self.gate.mark(bar["symbol"], bar["close"])
        for cid in [c for c, (state, _, _) in self.resuming.items() if state.order["symbol"] == bar["symbol"]]:
            self._adopt(cid, bar["ts_event"])
        for event in self.venue.on_bar(bar):
            self._on_venue_event(event)

    def _on_venue_event(self, event: VenueEvent) -> None:
        state = self.working.get(event.client_order_id)
        if state is None:
            log.warning("venue event for an order that is not working",
                        extra={"client_order_id": event.client_order_id})
            return
        if isinstance(event, Fill):
            state.apply(event)
            self.publisher.publish(FILLS_TOPIC, fill_record(state, event, self.settings.fee_currency, event.final),
                                   key=state.client_order_id)
            if self.gate is not None:
                self.gate.fill(state.client_order_id, state.order["symbol"], state.order["side"], event.quantity,
                               event.price)
            self._report(state, "FILLED" if event.final else "PARTIALLY_FILLED", event.ts, fill=event)
        else:
            self._report(state, event.status, event.ts, event.reason)

    # ---- trading state -------------------------------------------------------------------------

    def _on_state(self, rec: dict, ts: int) -> None:
        if rec["sequence"] <= self._state_sequence:
            return  # an older state delivered late
        self._state_sequence = rec["sequence"]
        self.trading_state = rec["state"]
        if self.trading_state == "HALTED":
            for cid in list(self.resuming):
                self._adopt(cid, ts)
            for cid, state in list(self.working.items()):
                if self.venue.cancel(cid, ts):
                    self._report(state, "CANCELLED", ts, f"HALT: {rec['reason']}")

    # ---- reports -------------------------------------------------------------------------------

    def _report(self, state: OrderState, status: str, ts: int, reason: str | None = None,
                fill: Fill | None = None) -> None:
        """Publish a report, record it in the journal, and forget the order once it is final."""
        record = execution_report(state, status, ts, reason, fill)
        self.journal.record(state.client_order_id, status)
        self.publisher.publish(REPORTS_TOPIC, record, key=state.client_order_id)
        if record["is_final"]:
            was_working = self.working.pop(state.client_order_id, None) is not None
            if was_working and status != "FILLED" and self.gate is not None:
                self.gate.done(state.client_order_id)
