"""riskfolio's drawdown portfolio program (``Portfolio.optimization``, ``model="Classic"``, ``hist=True``, long
only, budget 1, ``rm="MDD"`` or ``"CDaR"``) as a parametrised cvxpy problem that is compiled once and re-solved.

riskfolio builds the expressions of every risk measure it knows on each call (about 45 % of a CDaR solve's time
for 20 assets × 504 days) and cvxpy then compiles the problem afresh (another 25 %). Here the same constraints, in
riskfolio's order and with its scaling (×1000 rows), are written once over cvxpy ``Parameter`` objects (the
returns, their means, the class constraints, the drawdown bound, the risk-free rate, the CDaR tail weight), so
cvxpy's DPP compiles each problem shape once and a later solve only substitutes the data. The shape is the
risk measure, the objective, the window (days × assets), the number of class-constraint rows, whether a bound is
set, and for max Sharpe whether every mean is negative (riskfolio then maximises the excess return with the
risk at most 1 instead of minimising the risk at unit excess return). riskfolio's own ``optimization`` is the
reference the tests hold this to (``tests/test_drawdown_program.py``).

Weights come back as riskfolio gives them: ``w / k`` for max Sharpe, normalised by the sum of their absolute
values. A compiled problem holds the parameters' values of its last solve only; it is not shared across
threads (each service solves in one thread or in a worker process of its own).
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass

import cvxpy as cp
import numpy as np

OBJECTIVES = ("MAX_SHARPE", "MIN_RISK", "MAX_RETURN", "MAX_UTILITY")
MEASURES = ("MDD", "CDAR")
UTILITY_AVERSION = 2.0  # riskfolio's ``l`` (its default) for the utility objective
_COMPILED_SHAPES = 16  # a desk solves a handful of shapes (the full window, the fallback, warm-up windows)


@dataclass(frozen=True)
class Shape:
    """What fixes a compiled program: everything but the numbers."""

    risk_measure: str
    objective: str
    days: int
    assets: int
    class_rows: int
    bounded: bool
    all_means_negative: bool


@dataclass
class _Program:
    problem: cp.Problem
    w: cp.Variable
    k: cp.Variable
    returns: cp.Parameter
    mu: cp.Parameter
    a: cp.Parameter | None
    b: cp.Parameter | None
    upper: cp.Parameter | None
    rf: cp.Parameter
    tail: cp.Parameter


def _build(shape: Shape) -> _Program:
    """The program of riskfolio's ``optimization`` for ``shape``, its constraints in riskfolio's order."""
    t, n, sharpe = shape.days, shape.assets, shape.objective == "MAX_SHARPE"
    returns, mu = cp.Parameter((t, n)), cp.Parameter((1, n))
    rf, tail = cp.Parameter(), cp.Parameter(nonneg=True)
    a = cp.Parameter((shape.class_rows, n)) if shape.class_rows else None
    b = cp.Parameter((shape.class_rows, 1)) if shape.class_rows else None
    upper = cp.Parameter(nonneg=True) if shape.bounded else None
    w, k = cp.Variable((n, 1)), cp.Variable((1, 1))
    x, ret = returns @ w, mu @ w
    scale = k if sharpe else 1.0  # riskfolio's Charnes-Cooper variable k scales every bound for max Sharpe
    u = cp.Variable((t + 1, 1))
    dd = [u[1:] * 1000 >= u[:-1] * 1000 - x * 1000, u[1:] * 1000 >= 0, u[0] * 1000 == 0]
    if shape.risk_measure == "MDD":
        mdd = cp.Variable((1, 1))
        risk, measure = mdd, [mdd >= u[1:]]
        bound = [u[1:] <= upper * scale] if upper is not None else []
    else:
        dar, z = cp.Variable((1, 1)), cp.Variable((t, 1))
        risk = dar + tail * cp.sum(z)
        measure = [z * 1000 >= u[1:] * 1000 - dar * 1000, z * 1000 >= 0]
        bound = [risk <= upper * scale] if upper is not None else []
    if sharpe:
        cons = [cp.sum(w) == k, k * 1000 >= 0, w * 1000 >= 0, w <= k, w >= 0]
    else:
        cons = [cp.sum(w) == 1, w * 1000 >= 0, w <= 1, w >= 0]
    if a is not None and b is not None:  # both or neither (class_rows)
        cons += [a @ w - b @ k <= 0] if sharpe else [a @ w - b <= 0]
    cons += bound + measure if upper is not None else measure
    cons += dd
    if shape.objective == "MAX_SHARPE" and shape.all_means_negative:
        cons += [risk <= 1]
        objective = cp.Maximize(ret - rf * k)
    elif shape.objective == "MAX_SHARPE":
        cons += [ret - rf * k == 1]
        objective = cp.Minimize(risk * 1000)
    elif shape.objective == "MIN_RISK":
        objective = cp.Minimize(risk * 1000)
    elif shape.objective == "MAX_UTILITY":
        objective = cp.Maximize(ret - UTILITY_AVERSION * risk)
    else:
        objective = cp.Maximize(ret * 1000)
    return _Program(cp.Problem(objective, cons), w, k, returns, mu, a, b, upper, rf, tail)


@functools.lru_cache(maxsize=_COMPILED_SHAPES)
def _program(shape: Shape) -> _Program:
    if shape.risk_measure not in MEASURES or shape.objective not in OBJECTIVES:
        raise ValueError(f"no drawdown program for {shape.risk_measure}/{shape.objective}")
    return _build(shape)


def shape_of(returns: np.ndarray, mu: np.ndarray, risk_measure: str, objective: str, a: np.ndarray | None,
             upper: float | None) -> Shape:
    """The compiled program's shape for ``returns`` (days × assets) with means ``mu``, class constraints ``a``
    (or None) and bound ``upper`` (or None)."""
    rows = 0 if a is None else a.shape[0]
    return Shape(risk_measure, objective, returns.shape[0], returns.shape[1], rows, upper is not None,
                 bool((mu < 0).all()))


@dataclass(frozen=True)
class Outcome:
    """One solve: riskfolio's weights (None when the solver gave none) and the solver's status."""

    weights: np.ndarray | None
    status: str


def solve(returns: np.ndarray, risk_measure: str, objective: str, solver: str, *, a: np.ndarray | None = None,
          b: np.ndarray | None = None, upper: float | None = None, rf: float = 0.0,
          cdar_alpha: float = 0.05) -> Outcome:
    """riskfolio's weights for ``returns`` (days × assets) under ``risk_measure`` and ``objective``.

    ``a`` and ``b`` are riskfolio's ``ainequality`` / ``binequality`` (``a @ w <= b``, unscaled), ``upper``
    its ``uppermdd`` / ``upperCDaR``. A solver error is an outcome (status ``"solver_error"``), not raised; an
    unknown measure or objective, or only one of ``a`` and ``b``, is a ValueError.
    """
    if (a is None) != (b is None):
        raise ValueError("class constraints need both a and b (a @ w <= b), or neither")
    returns = np.asarray(returns, dtype=float)
    mu = returns.mean(axis=0, keepdims=True)
    prog = _program(shape_of(returns, mu, risk_measure, objective, a, upper))
    prog.returns.value, prog.mu.value = returns, mu
    prog.rf.value, prog.tail.value = rf, 1.0 / (cdar_alpha * returns.shape[0])
    if prog.a is not None and prog.b is not None:
        prog.a.value, prog.b.value = np.asarray(a, float) * 1000, np.asarray(b, float).reshape(-1, 1) * 1000
    if prog.upper is not None:
        prog.upper.value = upper
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # cvxpy's "solution may be inaccurate": the status says it
            prog.problem.solve(solver=solver, warm_start=False)  # a cold start: the same data, the same bits
    except cp.SolverError:
        return Outcome(None, "solver_error")
    if prog.w.value is None:
        return Outcome(None, str(prog.problem.status))
    raw = prog.w.value[:, 0] / prog.k.value[0, 0] if objective == "MAX_SHARPE" else prog.w.value[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):  # k or the sum at 0: non-finite weights, refused upstream
        return Outcome(np.abs(raw) / np.sum(np.abs(raw)), str(prog.problem.status))
