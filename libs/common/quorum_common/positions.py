"""Average-cost position arithmetic, shared by the portfolio's ledger and the execution service's sidecar gate.

A fill that opens or adds to a position moves its average cost to the quantity-weighted mean of the old
cost and the fill price; a fill that reduces it realises ``closed × (price − avg_cost)`` (mirrored for
shorts) and leaves the average cost unchanged; a fill beyond the position opens the other side at the
fill price.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Trade:
    """A position after one fill."""

    quantity: float
    """Signed quantity held after the fill (< 0 is short)."""
    avg_cost: float
    """Average cost of what is held (the old one when the fill only reduced the position)."""
    realised: float
    """Profit or loss the fill realised (gross of fees)."""
    crossed: bool
    """The fill went beyond the position and opened the other side."""


def trade(quantity: float, avg_cost: float, signed: float, price: float) -> Trade:
    """The position ``quantity`` at ``avg_cost`` after a fill of ``signed`` (< 0 sells) at ``price``."""
    if quantity == 0 or (quantity > 0) == (signed > 0):
        held = quantity + signed
        return Trade(held, (quantity * avg_cost + signed * price) / held, 0.0, False)
    closing = min(abs(signed), abs(quantity))
    direction = 1.0 if quantity > 0 else -1.0
    realised = closing * (price - avg_cost) * direction
    excess = abs(signed) - closing
    if excess > 0:
        return Trade(-direction * excess, price, realised, True)
    return Trade(quantity - direction * closing, avg_cost, realised, False)
