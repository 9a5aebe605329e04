"""The C++ risk sidecar as the last gate before a venue (fail closed).

The client package ``quorum_sidecar`` is imported only when a socket is configured. Its
``check_order`` never raises: a sidecar that is down, slow or unsure answers a reject verdict.
"""

from __future__ import annotations

import logging
import re
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

from quorum_common.positions import trade

log = logging.getLogger(__name__)

_NOT_TOKEN = re.compile(r"[^\x21-\x7e]")
TOKEN_MAX = 31


def sidecar_token(text: str | None) -> str:
    """``text`` in the sidecar's string form: printable ASCII without spaces (``_``), at most 31 characters.

    Sectors such as ``Information Technology`` become ``Information_Technology``; a missing one ``NONE``.
    """
    return _NOT_TOKEN.sub("_", text or "NONE")[:TOKEN_MAX]


class SidecarLike(Protocol):
    """The part of ``quorum_sidecar.SidecarClient`` the gate uses."""

    def check_order(self, client_order_id: str, symbol: str, side: str, quantity: float, price: float,
                    asset_class: str, sector: str) -> Any:
        """A verdict with ``approved``, ``reason`` and ``detail``."""

    def report_fill(self, client_order_id: str, symbol: str, side: str, quantity: float, price: float) -> Any:
        """Acknowledge a fill."""

    def report_mark(self, symbol: str, price: float) -> Any:
        """Acknowledge a mark."""

    def restore_mark(self, symbol: str, price: float, age_s: float) -> Any:
        """Acknowledge a mark received ``age_s`` seconds ago (ignored where the sidecar holds a newer one)."""

    def order_done(self, client_order_id: str) -> Any:
        """Acknowledge that an order will not fill further."""

    def state(self, symbol: str = "") -> Any:
        """The ledger, with ``symbol_found``, ``position``, ``open_buy`` and ``open_sell`` of ``symbol``; raises
        when there is no answer."""

    @property
    def connected(self) -> bool:
        """Whether a connection is open (the next call after a failed one opens a new one)."""


_UNCERTAIN = ("SIDECAR_UNAVAILABLE", "SIDECAR_PROTOCOL_ERROR")
"""Reject reasons where the sidecar may still have received (and later approved) the check."""
_QUANTITY_EPSILON = 1e-9
"""Quantities closer than this are equal (positions are sums of fills)."""


class WorkingOrder(NamedTuple):
    """An order the sidecar approved that may still fill: the terms of a check for its open quantity."""

    symbol: str
    side: str
    quantity: float
    price: float
    asset_class: str
    sector: str

    @classmethod
    def of(cls, order: dict[str, Any]) -> WorkingOrder:
        """The check terms of a ``SubmitOrder`` record: its limit price, or its reference price at market."""
        price = order["limit_price"] if order["order_type"] == "LIMIT" else order["reference_price"]
        return cls(order["symbol"], order["side"], order["quantity"], price, sidecar_token(order["asset_class"]),
                   sidecar_token(order["sector"]))


class SidecarGate:
    """Checks every order with the sidecar and keeps its ledger informed of fills, marks and ended orders.

    A check that timed out may still be processed by a slow sidecar, which would then count the order
    as in flight forever. The gate remembers such orders and, as soon as the sidecar answers again,
    reports each as done (an order the sidecar never saw just gets an ``UNKNOWN_ORDER`` reply).

    The sidecar keeps its ledger in memory, so a restarted one knows no position. The gate keeps the
    positions of the fills it reported (average cost) and, before the first request of every new
    connection (and until that succeeds), gives the sidecar whatever it lacks of them as one fill per
    symbol (id ``restore-<symbol>``: an unknown order, but the sidecar applies every fill it is told of).
    It only ever adds: where the sidecar holds more than the gate, it keeps it (the sidecar may only be
    tightened) and a warning says so. Until the positions are restored no order passes. Then it gives
    back the last mark of every symbol with the time since the gate had it (``RESTORE_MARK``), so a mark
    counts at least as old as it is for the staleness limit (never younger) and a restarted
    sidecar can trade at once on the marks that are still fresh. Last, where the sidecar counts less open
    quantity of a symbol than the gate's working orders, it asks it to count those orders again, each once
    its symbol has a fresh mark (a sidecar without one refuses every order of that symbol anyway). The
    marks' ages are the only wall-clock time the gate reads: staleness is the sidecar's real-time limit,
    not a decision of the desk. A restarted execution service counts the fills of its
    ``exec.reports`` history again (:meth:`remember`) and the orders it left working (:meth:`track`), so a pod
    whose service and sidecar restart together keeps its positions and working orders too.
    """

    def __init__(self, client: SidecarLike, clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.clock = clock
        """Monotonic seconds: when a mark arrived (its age at a restore)."""
        self.abandoned: list[str] = []
        self.positions: dict[str, tuple[float, float]] = {}
        """Per symbol: the signed quantity of the fills reported and its average cost."""
        self._filled: dict[str, float] = {}
        """Per client order id: the quantity counted in ``positions``."""
        self.marks: dict[str, tuple[float, float]] = {}
        """Per symbol: the last mark and when it arrived (:attr:`clock`), answered or not."""
        self.working: dict[str, WorkingOrder] = {}
        """Per client order id: the approved orders that may still fill (what a restarted sidecar counts again)."""
        self.uncounted: set[str] = set()
        """Working orders a new connection's sidecar has not counted yet: each waits for a mark of its symbol."""
        self._restore_due = True

    def check(self, order: dict[str, Any]) -> str | None:
        """``None`` when the sidecar approves the ``SubmitOrder`` record, else the reject reason."""
        if not self._ledger_restored():
            return "sidecar SIDECAR_UNAVAILABLE: its ledger could not be restored after a new connection"
        cid = order["client_order_id"]
        terms = WorkingOrder.of(order)
        try:
            verdict = self.client.check_order(cid, *terms)
        except Exception as exc:  # the real client never raises; anything else fails closed too
            self.abandoned.append(cid)
            return f"sidecar SIDECAR_UNAVAILABLE: {type(exc).__name__}: {exc}"
        reason = getattr(verdict, "reason", "UNKNOWN")
        if reason in _UNCERTAIN:
            self.abandoned.append(cid)
        else:
            self._settle()
        if getattr(verdict, "approved", False) is True:
            self.working[cid] = terms
            return None
        detail = getattr(verdict, "detail", "")
        return f"sidecar {reason}" + (f": {detail}" if detail else "")

    def fill(self, client_order_id: str, symbol: str, side: str, quantity: float, price: float) -> None:
        """Report a fill to the sidecar's ledger (and keep it in the gate's positions)."""
        self._ledger_restored()  # first, so that a restore does not count this fill twice
        self._count_fill(client_order_id, symbol, side, quantity, price)
        working = self.working.get(client_order_id)
        if working is not None:
            if working.quantity - quantity > _QUANTITY_EPSILON:
                self.working[client_order_id] = working._replace(quantity=working.quantity - quantity)
            else:
                self._forget(client_order_id)
        self._answered(self.client.report_fill(client_order_id, symbol, side, quantity, price))

    def remember(self, report: dict[str, Any]) -> None:
        """Count the fill an ``ExecutionReported`` record of an earlier run tells of (at start: the service's
        history), without reporting it: a sidecar that restarted with this service gets it with the restore.
        A report repeated by an at-least-once redelivery counts once (by its order's filled quantity)."""
        new = report["filled_quantity"] - self._filled.get(report["client_order_id"], 0.0)
        if new > _QUANTITY_EPSILON and report["last_fill_price"] is not None:
            self._count_fill(report["client_order_id"], report["symbol"], report["side"], new,
                             report["last_fill_price"])

    def track(self, order: dict[str, Any], open_quantity: float) -> None:
        """Keep an order an earlier run of the service had approved and that still works at the venue (its reports
        say so), with its open quantity: a restarted sidecar is asked to count it again like any working order."""
        self.working[order["client_order_id"]] = WorkingOrder.of(order)._replace(quantity=open_quantity)
        self._restore_due = True  # the sidecar may lack it: compare at the next call

    def _count_fill(self, client_order_id: str, symbol: str, side: str, quantity: float, price: float) -> None:
        held, cost = self.positions.get(symbol, (0.0, 0.0))
        after = trade(held, cost, quantity if side == "BUY" else -quantity, price)
        self.positions[symbol] = (after.quantity, after.avg_cost)
        self._filled[client_order_id] = self._filled.get(client_order_id, 0.0) + quantity

    def mark(self, symbol: str, price: float) -> None:
        """Report the last price of ``symbol`` (kept for the restore of a new connection, answered or not)."""
        self._ledger_restored()
        self.marks[symbol] = (price, self.clock())
        ack = self.client.report_mark(symbol, price)
        if getattr(ack, "reason", None) not in _UNCERTAIN:
            self._count_working([cid for cid in self.uncounted if self.working[cid].symbol == symbol])
        self._answered(ack)

    def done(self, client_order_id: str) -> None:
        """Report that an order ended without filling completely."""
        self._ledger_restored()
        self._forget(client_order_id)
        self._answered(self.client.order_done(client_order_id))

    def _forget(self, client_order_id: str) -> None:
        """An order that will not fill further is no longer working."""
        self.working.pop(client_order_id, None)
        self.uncounted.discard(client_order_id)

    def _count_working(self, client_order_ids: list[str]) -> bool:
        """Ask the sidecar to count working orders again (a check with the open quantity); False when it did not
        answer. One it already counts answers DUPLICATE_ORDER_ID; one without a mark of its symbol yet stays
        uncounted until that mark; one it refuses now stays at the venue, uncounted, and a warning names it."""
        for cid in client_order_ids:
            verdict = self.client.check_order(cid, *self.working[cid])
            reason = getattr(verdict, "reason", "UNKNOWN")
            if reason in _UNCERTAIN:
                return False
            if reason == "STALE_MARK":
                continue
            self.uncounted.discard(cid)
            if getattr(verdict, "approved", False) is not True and reason != "DUPLICATE_ORDER_ID":
                log.warning("a working order is over a sidecar limit after a restart; it is not counted",
                            extra={"client_order_id": cid, "reason": reason})
        return True

    def _answered(self, ack: Any) -> None:
        if getattr(ack, "ok", False) is True or getattr(ack, "reason", None) not in (*_UNCERTAIN, None):
            self._settle()

    def _settle(self) -> None:
        """Report every abandoned order as done, stopping at the first call that gets no answer."""
        while self.abandoned:
            ack = self.client.order_done(self.abandoned[0])
            if getattr(ack, "reason", None) in _UNCERTAIN:
                return
            self.abandoned.pop(0)

    def _ledger_restored(self) -> bool:
        """Restore the sidecar's positions when a new connection is due (see the class doc); whether they are."""
        if not self.client.connected:
            self._restore_due = True
        if self._restore_due:
            self._restore_due = not self._restore()
        return not self._restore_due

    def _restore(self) -> bool:
        """Give the sidecar what it lacks of the gate's positions, then the last marks with their age, then have
        it count the working orders of the symbols where it counts less open quantity than the gate (see the
        class doc); False when it did not answer."""
        symbols = {s for s, (held, _cost) in self.positions.items() if abs(held) > _QUANTITY_EPSILON}
        symbols |= {w.symbol for w in self.working.values()}
        try:
            known = {symbol: self.client.state(symbol) for symbol in sorted(symbols)}
        except Exception as exc:  # SidecarError: no valid answer
            log.warning("sidecar ledger not restored", extra={"error": str(exc)})
            return False
        for symbol, (held, cost) in self.positions.items():
            if symbol not in known or abs(held) <= _QUANTITY_EPSILON:
                continue
            sidecar_holds = known[symbol].position if known[symbol].symbol_found else 0.0
            if abs(held) <= abs(sidecar_holds) + _QUANTITY_EPSILON:
                if abs(held - sidecar_holds) > _QUANTITY_EPSILON:
                    log.warning("sidecar holds more than the fills reported; kept", extra={
                        "symbol": symbol, "sidecar": sidecar_holds, "reported": held})
                continue
            missing = held - sidecar_holds
            ack = self.client.report_fill(f"restore-{symbol}", symbol, "BUY" if missing > 0 else "SELL",
                                          abs(missing), cost)
            if getattr(ack, "reason", None) in _UNCERTAIN:
                return False
            log.warning("sidecar position restored", extra={"symbol": symbol, "quantity": missing, "price": cost})
        now = self.clock()
        for symbol, (price, received) in sorted(self.marks.items()):
            if getattr(self.client.restore_mark(symbol, price, now - received), "reason", None) in _UNCERTAIN:
                return False
        open_quantity: dict[str, float] = defaultdict(float)
        for w in self.working.values():
            open_quantity[w.symbol] += w.quantity
        counted = {symbol for symbol, quantity in open_quantity.items() if known[symbol].symbol_found
                   and known[symbol].open_buy + known[symbol].open_sell + _QUANTITY_EPSILON >= quantity}
        self.uncounted = {cid for cid, w in self.working.items() if w.symbol not in counted}
        return self._count_working(sorted(self.uncounted))


def open_sidecar_gate(socket_path: str, deadline_ms: float) -> SidecarGate:
    """A gate on the sidecar at ``socket_path``; a clear error when the client package is missing."""
    try:
        from quorum_sidecar import SidecarClient
    except ImportError as exc:
        raise RuntimeError(
            "QUORUM_SIDECAR_SOCKET is set but the sidecar client package quorum_sidecar is not installed "
            "(pip install -e services/risk_sidecar/client)"
        ) from exc
    return SidecarGate(SidecarClient(socket_path, deadline_ms=deadline_ms))
