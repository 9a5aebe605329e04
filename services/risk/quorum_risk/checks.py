"""The pre-trade checks: one small pure function each, evaluated in the order of :data:`CHECKS`.

Order of evaluation (fail-fast: the first failure is the verdict's reason code):

1. ``instrument`` — the symbol is in the mandate's universe (``INVALID_INSTRUMENT``).
2. ``quantity`` — finite, positive, within the asset class's decimals (``INVALID_QUANTITY``).
3. ``price`` — reference and limit prices finite and positive, the limit price (the one sent to the venue)
   within the price decimals; a LIMIT order has a limit price (``INVALID_PRICE``).
4. ``duplicate_order_id`` — the client order id was never decided before (``DUPLICATE_ORDER_ID``).
5. ``trading_state`` — HALTED rejects every order (``TRADING_HALTED``); REDUCING by command admits only
   risk-reducing orders (``REDUCE_ONLY``).
6. ``drawdown_lock`` — REDUCING by the drawdown lock admits only risk-reducing orders (``DRAWDOWN_LOCK``).
7. ``rate_limit`` — a token is left in the event-time bucket of ``max_orders_per_minute`` (``RATE_LIMIT``).
8. ``open_orders`` — orders in flight below ``max_open_orders`` when set (``MAX_OPEN_ORDERS``).
9. ``fat_finger_quantity`` — quantity ≤ ``fat_finger_volume_fraction`` × average volume, when volume is known.
10. ``fat_finger_notional`` — notional ≤ ``max_order_notional`` and ≤ ``max_order_capital_fraction`` × capital.
11. ``last_price`` — a valid last price is known and, with ``stale_price_ns``, fresh (``STALE_PRICE``).
12. ``price_collar`` — |order price / last price − 1| ≤ ``price_collar_pct`` (``PRICE_COLLAR``).
13. ``max_position`` — post-trade |weight| ≤ ``max_position_weight`` (and the member's ``max_weight``); no
    short position unless ``allow_short`` (``MAX_POSITION``).
14. ``sector_cap`` / 15. ``asset_class_cap`` / 16. ``gross_exposure`` — post-trade exposure (positions,
    pending fills and in-flight orders included) as a fraction of NAV within its cap.

Whether an order reduces risk is decided from the service's own book, never from the order's flag. An
exposure check never fails an order that does not increase the exposure it measures.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Container, Mapping
from dataclasses import dataclass
from typing import Any

from quorum_risk.book import SIGN, Book
from quorum_risk.limits import Limits
from quorum_risk.state import HALTED, REDUCING

_EPS = 1e-9


@dataclass(frozen=True)
class Member:
    """An instrument of the mandate's universe."""

    sector: str
    asset_class: str
    max_weight: float | None = None


@dataclass(frozen=True)
class Order:
    """The facts of a proposed order that the checks read."""

    client_order_id: str
    symbol: str
    sign: float
    quantity: float
    reference_price: float
    limit_price: float | None
    order_type: str
    ts: int
    reduces: bool

    @property
    def price(self) -> float:
        """The price the order may trade at: its limit price, else its reference price."""
        return self.limit_price if self.limit_price is not None else self.reference_price

    @property
    def notional(self) -> float:
        """Quantity × price, computed here rather than trusted from the order."""
        return self.quantity * self.price


@dataclass(frozen=True)
class Context:
    """Everything besides the order that the checks read."""

    limits: Limits
    state: str
    lock_code: str | None
    book: Book
    universe: Mapping[str, Member]
    decided_ids: Container[str]
    tokens: float
    quantity_decimals: int
    price_decimals: int

    @property
    def nav(self) -> float:
        """NAV of the latest snapshot, else the mandate's capital."""
        return self.book.nav if self.book.nav is not None else self.limits.capital


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one check; ``code`` is the reason code when it failed."""

    name: str
    passed: bool
    code: str
    detail: str = ""
    value: float | None = None
    limit: float | None = None

    def record(self) -> dict[str, Any]:
        """The ``RiskCheck`` record."""
        return {"name": self.name, "passed": self.passed, "detail": self.detail,
                "value": _finite_or_none(self.value), "limit": _finite_or_none(self.limit)}


Check = Callable[[Order, Context], CheckResult]


def _result(name: str, code: str, passed: bool, detail: str, value: float | None = None,
            limit: float | None = None) -> CheckResult:
    return CheckResult(name, passed, code, detail, value, limit)


def _has_decimals(x: float, decimals: int) -> bool:
    return abs(round(x, decimals) - x) <= 1e-12 * max(1.0, abs(x))


def _valid_number(x: float | None, decimals: int) -> bool:
    return x is not None and math.isfinite(x) and x > 0 and _has_decimals(x, decimals)


def check_instrument(order: Order, ctx: Context) -> CheckResult:
    """The symbol must belong to the mandate's universe."""
    ok = order.symbol in ctx.universe
    where = "in" if ok else "not in"
    return _result("instrument", "INVALID_INSTRUMENT", ok, f"symbol {order.symbol!r} {where} the mandate's universe")


def check_quantity(order: Order, ctx: Context) -> CheckResult:
    """Quantity finite, positive and within the asset class's decimals."""
    ok = _valid_number(order.quantity, ctx.quantity_decimals)
    return _result("quantity", "INVALID_QUANTITY", ok,
                   f"quantity {order.quantity} (finite, > 0, <= {ctx.quantity_decimals} decimals)", order.quantity)


def check_price(order: Order, ctx: Context) -> CheckResult:
    """Reference and limit prices finite and positive, the limit (sent to the venue) within the price decimals;
    LIMIT orders carry a limit."""
    ref, limit = order.reference_price, order.limit_price
    ok = math.isfinite(ref) and ref > 0 and (limit is None or _valid_number(limit, ctx.price_decimals))
    if order.order_type == "LIMIT" and order.limit_price is None:
        ok = False
    return _result("price", "INVALID_PRICE", ok,
                   f"reference {order.reference_price}, limit {order.limit_price} ({order.order_type})")


def check_duplicate(order: Order, ctx: Context) -> CheckResult:
    """The client order id must not have been decided before."""
    dup = order.client_order_id in ctx.decided_ids
    return _result("duplicate_order_id", "DUPLICATE_ORDER_ID", not dup,
                   f"client order id {order.client_order_id} {'already decided' if dup else 'new'}")


def check_trading_state(order: Order, ctx: Context) -> CheckResult:
    """HALTED rejects all; REDUCING by command admits only risk-reducing orders."""
    if ctx.state == HALTED:
        return _result("trading_state", "TRADING_HALTED", False, "desk HALTED: no order accepted")
    if ctx.state == REDUCING and ctx.lock_code == "REDUCE_ONLY" and not order.reduces:
        return _result("trading_state", "REDUCE_ONLY", False, "desk REDUCING: order does not reduce the position")
    return _result("trading_state", "OK", True, f"desk {ctx.state}, reduces risk: {order.reduces}")


def check_drawdown_lock(order: Order, ctx: Context) -> CheckResult:
    """While the drawdown lock holds, only risk-reducing orders pass."""
    locked = ctx.state == REDUCING and ctx.lock_code == "DRAWDOWN_LOCK"
    ok = not locked or order.reduces
    return _result("drawdown_lock", "DRAWDOWN_LOCK", ok,
                   f"drawdown {ctx.book.drawdown:.6g}, lock {'on' if locked else 'off'}, reduces risk: {order.reduces}",
                   ctx.book.drawdown, ctx.limits.drawdown_lock)


def check_rate(order: Order, ctx: Context) -> CheckResult:
    """An order-rate token must be available."""
    ok = ctx.tokens >= 1.0 - _EPS
    return _result("rate_limit", "RATE_LIMIT", ok, f"{ctx.tokens:.3f} tokens of {ctx.limits.max_orders_per_minute}/min",
                   ctx.tokens, 1.0)


def check_open_orders(order: Order, ctx: Context) -> CheckResult:
    """Orders in flight must stay below ``max_open_orders`` (when set)."""
    cap, n = ctx.limits.max_open_orders, float(len(ctx.book.inflight))
    ok = cap is None or n + 1 <= cap
    return _result("open_orders", "MAX_OPEN_ORDERS", ok, f"{n:g} in flight, limit {cap}", n + 1, cap)


def check_fat_finger_quantity(order: Order, ctx: Context) -> CheckResult:
    """Quantity within a fraction of the average volume, when the volume is known."""
    avg = ctx.book.average_volume(order.symbol)
    if avg is None:
        return _result("fat_finger_quantity", "FAT_FINGER_QUANTITY", True, "average volume unknown: not checked")
    cap = ctx.limits.fat_finger_volume_fraction * avg
    return _result("fat_finger_quantity", "FAT_FINGER_QUANTITY", order.quantity <= cap + _EPS,
                   f"quantity vs {ctx.limits.fat_finger_volume_fraction:g} x average volume {avg:.6g}",
                   order.quantity, cap)


def check_fat_finger_notional(order: Order, ctx: Context) -> CheckResult:
    """Notional within ``max_order_notional`` and the capital fraction."""
    lim = ctx.limits
    cap = min(lim.max_order_notional, lim.max_order_capital_fraction * lim.capital)
    return _result("fat_finger_notional", "FAT_FINGER_NOTIONAL", order.notional <= cap + _EPS,
                   f"notional vs min(max_order_notional, {lim.max_order_capital_fraction:g} x capital)",
                   order.notional, cap)


def check_last_price(order: Order, ctx: Context) -> CheckResult:
    """A last price must be known and, when ``stale_price_ns`` is set, fresh."""
    last = ctx.book.last.get(order.symbol)
    if last is None:
        return _result("last_price", "STALE_PRICE", False, f"no last price of {order.symbol}")
    if not (math.isfinite(last[0]) and last[0] > 0):
        return _result("last_price", "STALE_PRICE", False, f"last price of {order.symbol} is {last[0]}", last[0])
    age, cap = float(order.ts - last[1]), ctx.limits.stale_price_ns
    return _result("last_price", "STALE_PRICE", cap is None or age <= cap, f"last price age {age:g} ns", age, cap)


def check_price_collar(order: Order, ctx: Context) -> CheckResult:
    """The order's price within ``price_collar_pct`` of the last price."""
    last = ctx.book.last[order.symbol][0]
    dev = abs(order.price / last - 1.0)
    return _result("price_collar", "PRICE_COLLAR", dev <= ctx.limits.price_collar_pct + _EPS,
                   f"price {order.price} vs last {last}", dev, ctx.limits.price_collar_pct)


def _post_quantity(order: Order, ctx: Context) -> tuple[float, float]:
    before = ctx.book.quantity(order.symbol)
    return before, before + order.sign * order.quantity


def check_max_position(order: Order, ctx: Context) -> CheckResult:
    """Post-trade |weight| within the position limit; no short unless allowed."""
    before, after = _post_quantity(order, ctx)
    if after < -_EPS and not ctx.limits.allow_short and after < before:
        return _result("max_position", "MAX_POSITION", False, f"post-trade quantity {after:g}: short not allowed",
                       after, 0.0)
    member = ctx.universe[order.symbol]
    cap = min(ctx.limits.max_position_weight, member.max_weight if member.max_weight is not None else math.inf)
    weight = abs(after) * order.price / ctx.nav if ctx.nav > 0 else math.inf
    ok = weight <= cap + _EPS or abs(after) <= abs(before)
    return _result("max_position", "MAX_POSITION", ok, f"post-trade weight of {order.symbol}", weight, cap)


def _exposure(order: Order, ctx: Context, member_of: Callable[[Member], bool], with_order: bool) -> float:
    total = 0.0
    for symbol in sorted(ctx.book.symbols() | {order.symbol}):
        member = ctx.universe.get(symbol)
        if member is None or not member_of(member):
            continue
        qty = ctx.book.quantity(symbol)
        price = order.price if symbol == order.symbol else ctx.book.price(symbol) or 0.0
        if with_order and symbol == order.symbol:
            qty += order.sign * order.quantity
        total += abs(qty) * price
    return total


def _exposure_check(name: str, code: str, order: Order, ctx: Context, cap: float | None,
                    member_of: Callable[[Member], bool], what: str) -> CheckResult:
    if cap is None:
        return _result(name, code, True, f"no cap on {what}")
    before = _exposure(order, ctx, member_of, with_order=False)
    after = _exposure(order, ctx, member_of, with_order=True)
    frac = after / ctx.nav if ctx.nav > 0 else math.inf
    ok = frac <= cap + _EPS or after <= before + _EPS
    return _result(name, code, ok, f"post-trade exposure of {what} (in flight included) / NAV", frac, cap)


def check_sector_cap(order: Order, ctx: Context) -> CheckResult:
    """Post-trade sector exposure within the sector's cap."""
    sector = ctx.universe[order.symbol].sector
    return _exposure_check("sector_cap", "SECTOR_CAP", order, ctx, ctx.limits.sector_caps.get(sector),
                           lambda m: m.sector == sector, f"sector {sector}")


def check_asset_class_cap(order: Order, ctx: Context) -> CheckResult:
    """Post-trade asset-class exposure within the class's cap."""
    cls = ctx.universe[order.symbol].asset_class
    return _exposure_check("asset_class_cap", "ASSET_CLASS_CAP", order, ctx, ctx.limits.asset_class_caps.get(cls),
                           lambda m: m.asset_class == cls, f"asset class {cls}")


def check_gross_exposure(order: Order, ctx: Context) -> CheckResult:
    """Post-trade gross exposure within ``max_gross_exposure`` (when set)."""
    return _exposure_check("gross_exposure", "GROSS_EXPOSURE", order, ctx, ctx.limits.max_gross_exposure,
                           lambda m: True, "the portfolio")


CHECKS: tuple[Check, ...] = (
    check_instrument, check_quantity, check_price, check_duplicate, check_trading_state, check_drawdown_lock,
    check_rate, check_open_orders, check_fat_finger_quantity, check_fat_finger_notional, check_last_price,
    check_price_collar, check_max_position, check_sector_cap, check_asset_class_cap, check_gross_exposure,
)


def evaluate(order: Order, ctx: Context, checks: tuple[Check, ...] = CHECKS) -> list[CheckResult]:
    """Run ``checks`` in order, stopping after the first failure; return every result evaluated."""
    results: list[CheckResult] = []
    for check in checks:
        results.append(check(order, ctx))
        if not results[-1].passed:
            break
    return results


def is_reducing(book: Book, symbol: str, side: str, quantity: float) -> bool:
    """Whether an order only closes part of the position (held and pending, less closing orders in flight)."""
    if not (math.isfinite(quantity) and quantity > 0):
        return False
    open_qty = book.reducible(symbol)
    return open_qty * SIGN[side] < 0 and quantity <= abs(open_qty) + _EPS


def _finite_or_none(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None
