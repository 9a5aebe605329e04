"""The portfolio ledger: cash, positions at average cost, PnL, fees, NAV, peak and drawdown.

Conventions (documented because they decide the numbers):

- Average-cost method. A fill that adds to a position moves its average cost to the quantity-weighted
  mean of the old cost and the fill price; a fill that reduces it realises ``qty × (price − avg_cost)``
  (mirrored for shorts) and leaves the average cost unchanged. Fees are not capitalised into the cost:
  they are paid from cash and summed in ``fees_paid``, so ``realised_pnl`` is gross of fees and
  ``nav == capital + realised_pnl + unrealised_pnl − fees_paid`` always holds.
- A fill is a fact. A SELL beyond a long position (or a BUY beyond a short one) is applied in full: the
  excess opens a position on the other side at the fill price. The ledger counts it in
  ``oversold_fills`` so the engine can log it; it never refuses a fill.
- Fills are idempotent by ``fill_id`` (at-least-once delivery may repeat them).
- Marks come from bar closes (and a fill's price until a bar arrives). ``peak_nav`` and ``drawdown``
  (from peak, open losses included) are updated after every fill and every mark.
- Exposures are market values as fractions of NAV: per sector and per asset class they are gross
  (``|market value|``), so shorts count against caps too.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from quorum_common.positions import trade
from quorum_common.recent_ids import RecentIds


@dataclass
class Position:
    """One instrument held (``quantity`` < 0 is short)."""

    symbol: str
    sector: str
    asset_class: str
    quantity: float = 0.0
    avg_cost: float = 0.0
    last_price: float = 0.0
    realised_pnl: float = 0.0

    @property
    def market_value(self) -> float:
        """Quantity at the last price."""
        return self.quantity * self.last_price

    @property
    def unrealised_pnl(self) -> float:
        """Open profit or loss against the average cost."""
        return self.quantity * (self.last_price - self.avg_cost)


class Ledger:
    """Applies fills and marks; reports the portfolio's state."""

    def __init__(self, cash: float = 0.0) -> None:
        self.cash = cash
        self.capital = cash
        self.positions: dict[str, Position] = {}
        self.realised_pnl = 0.0
        self.fees_paid = 0.0
        self.peak_nav = cash
        self.oversold_fills = 0
        self.last_fill_id: str | None = None
        self._fill_ids = RecentIds()
        """Fills applied lately: one delivered again (at-least-once) changes nothing."""
        self._marks: dict[str, float] = {}

    def deposit(self, amount: float) -> None:
        """Add capital (the mandate's capital at start); raises the peak with it."""
        self.cash += amount
        self.capital += amount
        self._revalue()

    def mark(self, symbol: str, price: float) -> None:
        """Record the latest close of ``symbol`` and revalue."""
        if not (math.isfinite(price) and price > 0):
            raise ValueError(f"mark of {symbol} must be a positive finite price, got {price}")
        self._marks[symbol] = price
        pos = self.positions.get(symbol)
        if pos is not None:
            pos.last_price = price
        self._revalue()

    def last_price(self, symbol: str) -> float | None:
        """The latest known price of ``symbol`` (bar close or fill), if any."""
        return self._marks.get(symbol)

    def apply_fill(self, fill_id: str, symbol: str, side: str, quantity: float, price: float, fee: float,
                   sector: str = "UNKNOWN", asset_class: str = "UNKNOWN") -> bool:
        """Apply one fill; return False when ``fill_id`` was already applied (nothing changes).

        Raises ``ValueError`` for a non-positive or non-finite quantity or price, or a negative fee.
        """
        if fill_id in self._fill_ids:
            return False
        if side not in ("BUY", "SELL"):
            raise ValueError(f"fill side must be BUY or SELL, got {side!r}")
        for name, value in (("quantity", quantity), ("price", price)):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"fill {name} must be positive and finite, got {value}")
        if not (math.isfinite(fee) and fee >= 0):
            raise ValueError(f"fill fee must be non-negative and finite, got {fee}")
        self._fill_ids.add(fill_id)
        self.last_fill_id = fill_id
        pos = self.positions.get(symbol)
        if pos is None:
            pos = self.positions[symbol] = Position(symbol, sector, asset_class)
        signed = quantity if side == "BUY" else -quantity
        self.cash -= signed * price + fee
        self.fees_paid += fee
        self._trade(pos, signed, price)
        self._marks.setdefault(symbol, price)
        pos.last_price = self._marks[symbol]
        if pos.quantity == 0:
            pos.avg_cost = 0.0
        self._revalue()
        return True

    def _trade(self, pos: Position, signed: float, price: float) -> None:
        after = trade(pos.quantity, pos.avg_cost, signed, price)
        pos.quantity, pos.avg_cost = after.quantity, after.avg_cost
        pos.realised_pnl += after.realised
        self.realised_pnl += after.realised
        if after.crossed:
            self.oversold_fills += 1

    def _revalue(self) -> None:
        self.peak_nav = max(self.peak_nav, self.nav)

    @property
    def nav(self) -> float:
        """Net asset value: cash plus the market value of every position."""
        return self.cash + sum(p.market_value for p in self.positions.values())

    @property
    def unrealised_pnl(self) -> float:
        """Open profit or loss of every position."""
        return sum(p.unrealised_pnl for p in self.positions.values())

    @property
    def drawdown(self) -> float:
        """Fall of NAV from its peak, as a fraction (0 at a new peak)."""
        return 0.0 if self.peak_nav <= 0 else max(0.0, 1.0 - self.nav / self.peak_nav)

    def weights(self) -> dict[str, float]:
        """Market value of each open position as a fraction of NAV."""
        nav = self.nav
        return {s: (p.market_value / nav if nav > 0 else 0.0) for s, p in self.positions.items() if p.quantity}

    def gross_exposure(self) -> float:
        """Sum of |market value| over NAV."""
        return sum(abs(w) for w in self.weights().values())

    def net_exposure(self) -> float:
        """Sum of signed market value over NAV."""
        return sum(self.weights().values())

    def exposure_by(self, attribute: str) -> dict[str, float]:
        """Gross exposure per ``sector`` or ``asset_class``, as fractions of NAV."""
        out: dict[str, float] = defaultdict(float)
        for symbol, w in self.weights().items():
            out[getattr(self.positions[symbol], attribute)] += abs(w)
        return dict(sorted(out.items()))
