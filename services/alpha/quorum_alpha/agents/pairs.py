"""Pairs trading: Engle–Granger cointegration on a rolling window, OLS hedge ratio, spread z-score."""

from __future__ import annotations

import itertools
import math
import warnings
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from quorum_common.universe import INSTRUMENTS
from statsmodels.tsa.stattools import coint

from quorum_alpha.agents import Bar
from quorum_alpha.rolling import RollingMeanStd
from quorum_alpha.signal import Signal

LONG_SPREAD, FLAT, SHORT_SPREAD = 1, 0, -1


@dataclass(frozen=True, slots=True)
class PairRules:
    """Parameters of every pair trader."""

    window: int = 252
    test_every: int = 21
    max_pvalue: float = 0.05
    adf_lags: int | None = None
    entry_z: float = 2.0
    exit_z: float = 0.5
    stop_z: float = 3.5


@dataclass(frozen=True, slots=True)
class Transition:
    """Outcome of one step of the position state machine."""

    position: int
    armed: bool
    event: str


def step_position(position: int, armed: bool, z: float, cointegrated: bool, rules: PairRules) -> Transition:
    """The position state machine of a pair (pure).

    Flat and armed: enter short spread when z > entry, long spread when z < −entry (not beyond the
    stop band, and only while cointegrated). In a position: exit when the pair is no longer
    cointegrated, stop out (and disarm) when |z| > stop, exit when z has reverted to within ``exit``
    of 0 (or overshot). A disarmed pair re-arms once |z| < entry.
    """
    if position != FLAT:
        if not cointegrated:
            return Transition(FLAT, armed, "exit: cointegration lost")
        if abs(z) > rules.stop_z:
            return Transition(FLAT, False, f"stop: |z| > {rules.stop_z}")
        if position * z > -rules.exit_z:
            return Transition(FLAT, armed, f"exit: z reverted within {rules.exit_z}")
        return Transition(position, armed, "hold " + ("long" if position == LONG_SPREAD else "short") + " spread")
    armed = armed or abs(z) < rules.entry_z
    if armed and cointegrated and rules.entry_z < abs(z) <= rules.stop_z:
        if z > 0:
            return Transition(SHORT_SPREAD, armed, f"enter short spread: z > {rules.entry_z}")
        return Transition(LONG_SPREAD, armed, f"enter long spread: z < -{rules.entry_z}")
    return Transition(FLAT, armed, "flat")


def engle_granger(y: np.ndarray, x: np.ndarray, adf_lags: int | None) -> tuple[float, float, float]:
    """``(p_value, intercept, hedge_ratio)`` of y = a + b·x (OLS) with the Engle–Granger test's p-value."""
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return 1.0, float(np.mean(y)), 0.0
    design = np.column_stack((np.ones_like(x), x))
    (a, b), *_ = np.linalg.lstsq(design, y, rcond=None)
    kwargs = {"autolag": None, "maxlag": adf_lags} if adf_lags is not None else {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            p = float(coint(y, x, **kwargs)[1])
    except (ValueError, np.linalg.LinAlgError):
        p = 1.0
    return (p if math.isfinite(p) else 1.0), float(a), float(b)


class PairTrader:
    """One pair: aligns the two legs' closes by bar time and trades the spread y − a − b·x."""

    def __init__(self, y: str, x: str, rules: PairRules) -> None:
        self.y, self.x, self.rules = y, x, rules
        self.agent_id = f"alpha.pairs.{y}-{x}"
        self._pending: dict[int, dict[str, tuple[float, str]]] = {}
        self.max_pending = 50 * rules.window
        """Bars of a leg that runs ahead of the other kept at most (a safety bound on memory)."""
        self._last_t = -1
        self._ys: deque[float] = deque(maxlen=rules.window)
        self._xs: deque[float] = deque(maxlen=rules.window)
        self._spread = RollingMeanStd(rules.window)
        self._since_test = 0
        self.tested = False
        self.p_value = 1.0
        self.intercept = 0.0
        self.hedge_ratio = 0.0
        self.position = FLAT
        self._armed = True

    @property
    def legs(self) -> tuple[str, str]:
        """``(y, x)``."""
        return self.y, self.x

    def update(self, bar: Bar) -> list[Signal]:
        """Buffer the bar by its time; when both legs of that time are in, step the pair.

        Each leg's bars come in time order (the engine skips stale ones) but the legs may interleave
        in any way (Kafka partitions): a time that one leg has passed without the other's bar can
        never complete and is dropped, so the result does not depend on the interleaving.
        """
        t, symbol = bar["ts_event"], bar["symbol"]
        if t <= self._last_t:
            return []
        pending = self._pending
        self._drop_pending(lambda k: k < t and symbol not in pending[k])
        slot = pending.setdefault(t, {})
        slot[symbol] = (bar["close"], bar["event_id"])
        if len(slot) < 2:
            if len(pending) > self.max_pending:
                del pending[next(iter(pending))]
            return []
        self._drop_pending(lambda k: k <= t)
        self._last_t = t
        (py, y_id), (px, x_id) = slot[self.y], slot[self.x]
        return self._step(py, px, y_id, x_id)

    def _drop_pending(self, dead: Callable[[int], bool]) -> None:
        """Drop the oldest pending times while ``dead`` holds (pending times are in insertion = time order)."""
        pending = self._pending
        while pending:
            k = next(iter(pending))
            if not dead(k):
                return
            del pending[k]

    def _step(self, py: float, px: float, y_id: str, x_id: str) -> list[Signal]:
        self._ys.append(py)
        self._xs.append(px)
        if self.tested:
            self._spread.push(py - self.intercept - self.hedge_ratio * px)
        self._since_test += 1
        if len(self._ys) == self.rules.window and (not self.tested or self._since_test >= self.rules.test_every):
            self._test()
        if not self.tested:
            return []
        spread = py - self.intercept - self.hedge_ratio * px
        std = self._spread.std
        z = (spread - self._spread.mean) / std if std > 1e-12 * max(abs(py), 1.0) else 0.0
        cointegrated = self.p_value <= self.rules.max_pvalue
        was = self.position
        move = step_position(was, self._armed, z, cointegrated, self.rules)
        self.position, self._armed = move.position, move.armed
        if not cointegrated and was == FLAT:
            return []
        return self._signals(py, px, z, spread, move.event, y_id, x_id)

    def _test(self) -> None:
        ys, xs = np.fromiter(self._ys, float), np.fromiter(self._xs, float)
        self.p_value, self.intercept, self.hedge_ratio = engle_granger(ys, xs, self.rules.adf_lags)
        self._spread.reset((ys - self.intercept - self.hedge_ratio * xs).tolist())
        self._since_test = 0
        self.tested = True

    def _signals(self, py: float, px: float, z: float, spread: float, event: str, y_id: str,
                 x_id: str) -> list[Signal]:
        b = self.hedge_ratio
        strength = self.position * min(1.0, abs(z) / self.rules.entry_z)
        y_notional, x_notional = py, abs(b) * px
        scale = max(y_notional, x_notional)
        y_score = strength * y_notional / scale
        x_score = -strength * math.copysign(1.0, b) * x_notional / scale
        confidence = min(1.0, max(0.0, 1.0 - self.p_value))
        inputs = {"z": z, "p_value": self.p_value, "hedge_ratio": b, "spread": spread,
                  "intercept": self.intercept, "position": float(self.position)}
        reason = f"{self.y}/{self.x} {event} (z={z:+.2f}, p={self.p_value:.3f})"
        common = {"agent_id": self.agent_id, "strategy": "PAIRS", "confidence": confidence, "inputs": inputs,
                  "reason": reason, "horizon_bars": self.rules.test_every}
        return [
            Signal(symbol=self.y, score=y_score, paired_symbol=self.x, hedge_ratio=b, correlation_id=y_id, **common),
            Signal(symbol=self.x, score=x_score, paired_symbol=self.y, hedge_ratio=1.0 / b if b else None,
                   correlation_id=x_id, **common),
        ]


def same_sector_pairs(tradable_only: bool = True) -> list[tuple[str, str]]:
    """Every pair of universe symbols that share a sector (symbols sorted within and across pairs)."""
    by_sector: dict[str, list[str]] = {}
    for inst in INSTRUMENTS.values():
        if inst.tradable or not tradable_only:
            by_sector.setdefault(inst.sector, []).append(inst.symbol)
    return sorted(p for syms in by_sector.values() for p in itertools.combinations(sorted(syms), 2))


class PairsAgent:
    """Routes each bar to the pair traders it is a leg of."""

    def __init__(self, pairs: list[tuple[str, str]], rules: PairRules) -> None:
        seen: set[frozenset[str]] = set()
        self.traders: list[PairTrader] = []
        for y, x in pairs:
            if frozenset((y, x)) not in seen:
                seen.add(frozenset((y, x)))
                self.traders.append(PairTrader(y, x, rules))
        self._by_symbol: dict[str, list[PairTrader]] = {}
        for trader in self.traders:
            for leg in trader.legs:
                self._by_symbol.setdefault(leg, []).append(trader)

    def update(self, bar: Bar) -> list[Signal]:
        """The signals of every pair that the bar completes."""
        traders = self._by_symbol.get(bar["symbol"])
        if not traders:
            return []
        return [s for trader in traders for s in trader.update(bar)]
