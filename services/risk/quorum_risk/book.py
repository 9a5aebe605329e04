"""The risk service's own view of the desk: positions, orders in flight, last prices and volumes.

Positions come from the latest ``portfolio.snapshots`` record. An approved order stays *in flight*
until execution reports it final; a fill stays *pending* until a snapshot stamped after it arrives,
so exposure is never under-counted between a fill and the snapshot that books it (it may be
counted twice for that short while, which errs on the safe side).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

SIGN = {"BUY": 1.0, "SELL": -1.0}


@dataclass
class InFlight:
    """An approved order not yet final at the venue."""

    symbol: str
    sign: float
    remaining: float


@dataclass
class Book:
    """Positions, NAV, in-flight orders and market data as the risk service sees them."""

    volume_window: int = 20
    nav: float | None = None
    drawdown: float = 0.0
    snapshot_seq: int = -1
    snapshot_ts: int = -1
    positions: dict[str, tuple[float, float]] = field(default_factory=dict)
    inflight: dict[str, InFlight] = field(default_factory=dict)
    pending_fills: list[tuple[int, str, float]] = field(default_factory=list)
    last: dict[str, tuple[float, int]] = field(default_factory=dict)
    volumes: dict[str, deque[float]] = field(default_factory=dict)

    def on_snapshot(self, snap: Mapping[str, Any]) -> bool:
        """Adopt a portfolio snapshot unless an equal or later sequence was seen; return whether adopted."""
        if snap["sequence"] <= self.snapshot_seq:
            return False
        self.snapshot_seq, self.snapshot_ts = snap["sequence"], snap["ts_event"]
        self.nav, self.drawdown = snap["nav"], snap["drawdown"]
        self.positions = {p["symbol"]: (p["quantity"], p["last_price"]) for p in snap["positions"]}
        self.pending_fills = [f for f in self.pending_fills if f[0] >= self.snapshot_ts]
        return True

    def on_bar(self, bar: Mapping[str, Any]) -> None:
        """Record the bar's close as the last price and its volume in the rolling window."""
        symbol = bar["symbol"]
        self.last[symbol] = (bar["close"], bar["ts_event"])
        self.volumes.setdefault(symbol, deque(maxlen=self.volume_window)).append(bar["volume"])

    def on_approved(self, client_order_id: str, symbol: str, side: str, quantity: float) -> None:
        """Count an approved order as in flight."""
        self.inflight[client_order_id] = InFlight(symbol, SIGN[side], quantity)

    def on_fill(self, fill: Mapping[str, Any]) -> None:
        """Move filled quantity from in flight to pending (until a later snapshot books it)."""
        order = self.inflight.get(fill["client_order_id"])
        if order is None:
            return
        self.pending_fills.append((fill["ts_event"], order.symbol, order.sign * fill["quantity"]))
        order.remaining = max(0.0, fill["leaves_quantity"])
        if fill["is_final"] or order.remaining <= 0:
            del self.inflight[fill["client_order_id"]]

    def on_report(self, report: Mapping[str, Any]) -> None:
        """Forget an order that execution reports final (rejected, cancelled, expired, filled)."""
        if report["is_final"]:
            self.inflight.pop(report["client_order_id"], None)

    def quantity(self, symbol: str) -> float:
        """Signed quantity held, pending fills and in-flight orders included."""
        held = self.positions.get(symbol, (0.0, 0.0))[0]
        pending = sum(q for _, s, q in self.pending_fills if s == symbol)
        flying = sum(o.sign * o.remaining for o in self.inflight.values() if o.symbol == symbol)
        return held + pending + flying

    def reducible(self, symbol: str) -> float:
        """Signed quantity that an opposite order may still close: held and pending, less in-flight closing orders."""
        held = self.positions.get(symbol, (0.0, 0.0))[0] + sum(q for _, s, q in self.pending_fills if s == symbol)
        closing = sum(o.remaining for o in self.inflight.values() if o.symbol == symbol and o.sign * held < 0)
        if held == 0:
            return 0.0
        left = max(0.0, abs(held) - closing)
        return left if held > 0 else -left

    def price(self, symbol: str) -> float | None:
        """Last known price: the latest bar close, else the snapshot's mark."""
        if symbol in self.last:
            return self.last[symbol][0]
        pos = self.positions.get(symbol)
        return pos[1] if pos else None

    def average_volume(self, symbol: str) -> float | None:
        """Mean volume of the recent bars, or ``None`` when unknown or zero."""
        vols = self.volumes.get(symbol)
        if not vols:
            return None
        avg = sum(vols) / len(vols)
        return avg if avg > 0 else None

    def symbols(self) -> set[str]:
        """Every symbol with a position, a pending fill or an order in flight."""
        return set(self.positions) | {s for _, s, _ in self.pending_fills} | {o.symbol for o in self.inflight.values()}
