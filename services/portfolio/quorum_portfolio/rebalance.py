"""The rebalancing policy: when to trade back to target, and which trades are worth sending.

Rebalance (seed report §1.2) when any of:

- ``INITIAL``: the portfolio has never rebalanced under the mandate;
- ``CALENDAR``: ``calendar_days`` (> 0) have elapsed since the last rebalance;
- ``DRIFT``: the largest ``|current − target|`` weight exceeds ``drift_band`` *and* ``cooldown_days``
  have elapsed since the last rebalance (threshold with cooldown, against churning).

Days are event-time days (``ts_event`` differences), never the wall clock. Trades: one per symbol whose
value gap ``|NAV × target − quantity × price|`` is at least ``min_trade_value``; quantities are whole
units, or multiples of a fractional step for fractional asset classes (crypto, fx), always rounded
towards zero (a zero target sells the whole holding, dust included); a long-only book never sells
more than it holds. Buys are scaled down so they cost no
more than the cash plus what the sells bring, nor more than the room the gross exposure limit leaves before
the sells. Sells come before buys. No order is larger than
``max_order_notional`` (the risk layer's fat-finger limit, with a 1 % margin): the rest of a large gap
is traded at the next rebalance, so a big move is worked over several sessions instead of rejected.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from quorum_portfolio.mandate import RebalancePolicy

NS_PER_DAY = 86_400_000_000_000
ORDER_LIMIT_MARGIN = 0.99
"""Orders stay this fraction under the risk layer's notional limit (prices move by the check)."""


@dataclass(frozen=True)
class Trade:
    """One order the rebalance wants."""

    symbol: str
    side: str
    quantity: float
    price: float
    current_weight: float
    target_weight: float
    reduces_risk: bool

    @property
    def notional(self) -> float:
        """Quantity at the reference price."""
        return self.quantity * self.price


def max_drift(current: dict[str, float], target: dict[str, float]) -> float:
    """The largest absolute weight gap over every symbol held or targeted."""
    symbols = set(current) | set(target)
    return max((abs(current.get(s, 0.0) - target.get(s, 0.0)) for s in symbols), default=0.0)


def rebalance_trigger(policy: RebalancePolicy, now_ts: int, last_rebalance_ts: int | None,
                      drift: float) -> str | None:
    """Why to rebalance now (``INITIAL``, ``CALENDAR`` or ``DRIFT``), or None to hold."""
    if last_rebalance_ts is None:
        return "INITIAL"
    elapsed_days = (now_ts - last_rebalance_ts) / NS_PER_DAY
    if policy.calendar_days > 0 and elapsed_days >= policy.calendar_days:
        return "CALENDAR"
    if drift > policy.drift_band and elapsed_days >= policy.cooldown_days:
        return "DRIFT"
    return None


def round_quantity(quantity: float, step: float) -> float:
    """``quantity`` rounded towards zero to a multiple of ``step``."""
    units = math.floor(quantity / step + 1e-9)
    return round(units * step, 12)


def plan_trades(targets: dict[str, float], holdings: dict[str, float], prices: dict[str, float], nav: float,
                cash: float, min_trade_value: float, step: Callable[[str], float],
                allow_short: bool = False, max_order_notional: float | None = None,
                buy_room: float | None = None) -> list[Trade]:
    """The trades that move ``holdings`` (quantities) to ``targets`` (weights of ``nav``): sells, then buys.

    Symbols without a price are left alone. ``buy_room`` (the gross exposure the risk limit leaves, in value,
    before any of these sells) caps the buys as the cash does: the risk service may check a buy before the
    sell that frees its room, and would refuse it (``GROSS_EXPOSURE``); the rest is bought at a later
    rebalance, once the sells have filled.
    """
    sells: list[Trade] = []
    buys: list[Trade] = []
    for symbol in sorted(set(targets) | {s for s, q in holdings.items() if q}):
        price = prices.get(symbol)
        if not price or nav <= 0:
            continue
        held = holdings.get(symbol, 0.0)
        target = targets.get(symbol, 0.0)
        gap = nav * target - held * price
        if abs(gap) < min_trade_value:
            continue
        qty = held if target == 0 and held > 0 else round_quantity(abs(gap) / price, step(symbol))
        if gap < 0 and not allow_short:
            qty = min(qty, max(held, 0.0))
        if max_order_notional is not None and qty * price > max_order_notional * ORDER_LIMIT_MARGIN:
            qty = round_quantity(max_order_notional * ORDER_LIMIT_MARGIN / price, step(symbol))
        if qty <= 0:
            continue
        side = "BUY" if gap > 0 else "SELL"
        trade = Trade(symbol, side, qty, price, held * price / nav, target,
                      reduces_risk=(side == "SELL" and held > 0) or (side == "BUY" and held < 0))
        (buys if side == "BUY" else sells).append(trade)
    budget = cash + sum(t.notional for t in sells)
    if buy_room is not None:
        budget = min(budget, buy_room)
    budget = max(budget, 0.0)  # a book already over its gross limit, or short of cash, buys nothing
    spend = sum(t.notional for t in buys)
    if spend > budget:
        scale = budget / spend
        buys = [Trade(t.symbol, t.side, round_quantity(t.quantity * scale, step(t.symbol)), t.price,
                      t.current_weight, t.target_weight, t.reduces_risk) for t in buys]
        buys = [t for t in buys if t.quantity > 0 and t.notional >= min_trade_value]
    return sells + buys
