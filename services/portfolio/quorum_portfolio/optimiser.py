"""Target weights with riskfolio-lib: a drawdown-measure (MDD or CDaR) problem with class caps.

The problem is riskfolio's ``Classic`` model on historical returns (``hist=True``), long only, budget 1:
``rm="MDD"`` or ``"CDaR"`` from the mandate, the mandate's objective, the drawdown bound set with
``uppermdd`` / ``upperCDaR``, and the caps as linear class constraints (``assets_constraints`` →
``ainequality`` / ``binequality``): per sector and per asset class ``<=`` cap, the mandate's minimum
weights ``>=`` (matched to an asset class or a sector), and per instrument ``<=`` its cap. Names match
case-insensitively; a cap naming no class present is ignored. riskfolio measures drawdowns on
uncompounded cumulative returns, so ``upper_risk`` bounds that (slightly conservative) drawdown.
riskfolio's program is solved through :mod:`quorum_portfolio.drawdown_program`, the same constraints
compiled once per problem shape (riskfolio's ``optimization`` rebuilds every risk measure it knows on each
call, and cvxpy recompiles it: about 0.07 s a solve for 20 assets × 504 days against 0.03 s); riskfolio's own
``optimization`` is what the tests hold the weights to.
The solvers are tried in order; CLARABEL is the fastest installed one that solves MDD and CDaR here
(SCS takes several times longer). A solver's certificate that the problem is infeasible (or unbounded)
is final: the next solvers are not asked to prove it again (on the 2005-2018 replay every failed CLARABEL
solve was such a certificate, and SCS never found weights after one). The class constraints are built
once per :func:`optimise` call and shared by the objective and the minimum-risk retry.

When the mandate's objective cannot be solved the least-drawdown portfolio within the caps is solved without the
bound. When it meets the bound it is the minimum-risk portfolio under the bound too (the bound is slack). When it
does not, no fully invested portfolio within the caps drew down as little over the window (as in 2009-2010 for the
default mandate), and only ``bound / its drawdown`` of it is held, the rest in cash: an uncompounded drawdown, hence
MDD and CDaR, scales with the weights, so the held part meets the bound on the window (:func:`bound_reached`; a
mandate with minimum weights holds it whole, since its floors are shares of the NAV).
When nothing can be solved the result keeps the previous targets when there are some, else takes
:func:`capped_equal_weight`. Each of these is flagged ``fallback=True``; it never raises.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace

import cvxpy as cp
import numpy as np
import pandas as pd
import riskfolio as rp

from quorum_portfolio import drawdown_program

log = logging.getLogger(__name__)

_SECTOR, _CLASS = "Sector", "AssetClass"
_TINY = 1e-6
_CERTIFIED = frozenset({cp.INFEASIBLE, cp.UNBOUNDED})  # a solver's proof, not a numerical failure


@dataclass(frozen=True)
class Problem:
    """One optimisation: returns (columns = symbols) and the mandate's constraints."""

    returns: pd.DataFrame
    sectors: dict[str, str]
    asset_classes: dict[str, str]
    risk_measure: str = "MDD"
    objective: str = "MAX_SHARPE"
    upper_risk: float | None = None
    cdar_alpha: float = 0.05
    risk_free_rate: float = 0.0
    sector_caps: dict[str, float] = field(default_factory=dict)
    asset_class_caps: dict[str, float] = field(default_factory=dict)
    min_weights: dict[str, float] = field(default_factory=dict)
    asset_caps: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Result:
    """Weights (summing to at most 1; the rest is cash) and how they were found."""

    weights: dict[str, float]
    status: str
    solve_ms: float
    fallback: bool
    expected_return: float | None = None
    expected_risk: float | None = None
    expected_sharpe: float | None = None


def _match(caps: dict[str, float], names: set[str]) -> dict[str, float]:
    """Caps whose key names one of ``names`` (case-insensitive), keyed by the name as spelled in ``names``."""
    folded = {n.casefold(): n for n in names}
    return {folded[k.casefold()]: float(v) for k, v in caps.items() if k.casefold() in folded}


def constraint_table(problem: Problem, symbols: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """riskfolio's ``(constraints, asset_classes)`` tables for the problem's caps and minimum weights."""
    classes = pd.DataFrame({"Assets": symbols, _SECTOR: [problem.sectors[s] for s in symbols],
                            _CLASS: [problem.asset_classes[s] for s in symbols]})
    rows: list[tuple[str, str, str, str, float]] = []
    for set_name, caps in ((_SECTOR, problem.sector_caps), (_CLASS, problem.asset_class_caps)):
        rows += [("Classes", set_name, name, "<=", cap) for name, cap in _match(caps, set(classes[set_name])).items()]
    for key, floor in problem.min_weights.items():
        for set_name in (_CLASS, _SECTOR):
            hit = _match({key: floor}, set(classes[set_name]))
            if hit:
                rows += [("Classes", set_name, name, ">=", v) for name, v in hit.items()]
                break
    rows += [("Assets", "", s, "<=", float(c)) for s, c in problem.asset_caps.items() if s in symbols and c < 1.0]
    table = pd.DataFrame({
        "Disabled": [False] * len(rows), "Type": [r[0] for r in rows], "Set": [r[1] for r in rows],
        "Position": [r[2] for r in rows], "Sign": [r[3] for r in rows], "Weight": [r[4] for r in rows],
        "Type Relative": [""] * len(rows), "Relative Set": [""] * len(rows), "Relative": [""] * len(rows),
        "Factor": [""] * len(rows),
    })
    return table, classes


def scale_to_caps(weights: dict[str, float], problem: Problem) -> dict[str, float]:
    """Cut each weight to its instrument cap, then scale each over-cap sector and asset class down to its cap.

    Nothing is redistributed, so every cap holds and the sum never grows; the rest is cash.
    """
    w = {s: min(v, problem.asset_caps.get(s, 1.0)) for s, v in sorted(weights.items())}
    for labels, caps in ((problem.sectors, problem.sector_caps), (problem.asset_classes, problem.asset_class_caps)):
        for name, cap in _match(caps, {labels.get(s, "") for s in w}).items():
            members = [s for s in w if labels.get(s, "") == name]
            total = sum(w[s] for s in members)
            if total > cap:
                for s in members:
                    w[s] *= cap / total
    return w


def capped_equal_weight(problem: Problem, symbols: list[str]) -> dict[str, float]:
    """Equal weights brought within the caps by :func:`scale_to_caps` (the fallback without previous targets)."""
    return scale_to_caps({s: 1.0 / len(symbols) for s in symbols}, problem) if symbols else {}


def _risk(problem: Problem, port_returns: np.ndarray) -> float:
    x = port_returns.reshape(-1, 1)
    if problem.risk_measure == "CDAR":
        return float(rp.RiskFunctions.CDaR_Abs(x, alpha=problem.cdar_alpha))
    return float(rp.RiskFunctions.MDD_Abs(x))


def _class_constraints(problem: Problem, symbols: list[str]) -> tuple[np.ndarray | None, np.ndarray | None]:
    """riskfolio's ``ainequality`` / ``binequality`` (``a @ w <= b``) for the caps and minimum weights, or Nones."""
    table, classes = constraint_table(problem, symbols)
    if not len(table):
        return None, None
    a, b = rp.assets_constraints(table, classes)
    return np.asarray(a, dtype=float), np.asarray(b, dtype=float)


def _solve(returns: np.ndarray, problem: Problem, constraints: tuple[np.ndarray | None, np.ndarray | None],
           solvers: tuple[str, ...]) -> np.ndarray | None:
    """riskfolio's weights for ``problem.objective`` (see :mod:`quorum_portfolio.drawdown_program`), or None.

    The solvers are tried in order until one gives finite weights, as riskfolio tries them; a solver's
    certificate of infeasibility (or unboundedness) ends the search.
    """
    a, b = constraints
    for solver in solvers:
        out = drawdown_program.solve(returns, problem.risk_measure, problem.objective, solver, a=a, b=b,
                                     upper=problem.upper_risk, rf=problem.risk_free_rate,
                                     cdar_alpha=problem.cdar_alpha)
        if out.weights is not None and np.isfinite(out.weights).all():
            return out.weights
        if out.status in _CERTIFIED:
            return None
    return None


def optimise(problem: Problem, solvers: tuple[str, ...] = ("CLARABEL", "SCS"),
             previous: dict[str, float] | None = None, periods_per_year: int = 252) -> Result:
    """Solve ``problem``; never raises.

    When the mandate's objective fails (e.g. max Sharpe when no asset has a positive mean), the least-drawdown
    portfolio under the same measure and caps is solved without the bound: the minimum-risk portfolio under the
    bound when it meets it, else cut to meet it (:func:`bound_reached`); when that fails too, the ``previous``
    weights are kept (or capped equal weights taken). Each counts as a fallback.
    """
    symbols = sorted(problem.returns.columns)
    started = time.perf_counter()
    reason = f"{len(symbols)} asset(s) with enough history" if len(symbols) < 2 else ""
    raw, used, constraints = None, problem, None
    returns = problem.returns[symbols].to_numpy(dtype=float)
    retry = replace(problem, objective="MIN_RISK", upper_risk=None)  # the least-drawdown portfolio
    attempts = [problem] + ([retry] if retry != problem else [])
    for used in attempts if len(symbols) >= 2 else []:
        objective = used.objective if used.upper_risk == problem.upper_risk else "MIN_RISK without the bound"
        try:
            if constraints is None:
                constraints = _class_constraints(problem, symbols)  # the same for every attempt
            raw = _solve(returns, used, constraints, solvers)
        except Exception as exc:  # riskfolio/cvxpy raise many types; the desk must keep running
            reason = f"{objective}: {type(exc).__name__}: {exc}"
            continue
        if raw is not None:
            break
        reason = f"{objective} infeasible or no solver succeeded"
    solve_ms = (time.perf_counter() - started) * 1e3
    if raw is None:
        weights = dict(previous) if previous else capped_equal_weight(problem, symbols)
        log.warning("optimiser fallback", extra={"reason": reason, "previous": bool(previous)})
        return Result(weights, f"fallback: {'previous' if previous else 'capped equal'} ({reason})", solve_ms, True)
    clipped = raw.clip(min=0.0)
    clipped[clipped < _TINY] = 0.0
    clipped /= clipped.sum()
    fallback = used != problem
    status = f"fallback: {used.objective} ({reason})" if fallback else "optimal"
    if used.upper_risk != problem.upper_risk and (least := _risk(problem, returns @ clipped)) > problem.upper_risk:
        clipped, status = bound_reached(clipped, least, problem, reason)  # else the bound is slack: MIN_RISK under it
    weights = {s: float(v) for s, v in zip(symbols, clipped, strict=True)}
    port_returns = returns @ clipped
    exp_ret = float(port_returns.mean() * periods_per_year)
    risk = _risk(problem, port_returns)
    return Result(weights, status, solve_ms, fallback, exp_ret, risk, exp_ret / risk if risk > 0 else None)


def bound_reached(weights: np.ndarray, risk: float, problem: Problem, reason: str) -> tuple[np.ndarray, str]:
    """The least-drawdown ``weights`` (solved without the bound; drawdown ``risk`` on the window, above the bound)
    cut so that they meet ``problem.upper_risk``, the rest in cash, and the status saying so. Held whole when the
    problem has minimum weights (its floors are shares of the NAV, which a cut would break)."""
    bound = problem.upper_risk
    assert bound is not None and risk > bound
    held = 1.0 if problem.min_weights else bound / risk
    what = f"{held:.0%} of the least-drawdown portfolio" if held < 1 else "the least-drawdown portfolio, whole"
    log.warning("optimiser: drawdown bound out of reach", extra={"risk": risk, "bound": bound, "held": held})
    return weights * held, (f"fallback: {what} ({reason}; its {problem.risk_measure} {risk:.4f} is above the "
                            f"bound {bound:.4f})")


def benchmark_optimiser(seed: int = 0, days: int = 1000, solvers: tuple[str, ...] = ("CLARABEL", "SCS")) -> dict:
    """Time ONE MDD and ONE CDaR max-Sharpe solve on the 20 S&P 500 stocks of skfolio, last ``days`` days.

    The problem carries the static universe's sectors with a 0.30 cap each, as a mandate would. A tiny
    warm-up solve first loads the solver libraries (a one-time cost a running service has already paid).
    The first solve of each measure compiles its program (``<rm>_s``); a second solve of the same shape on
    the window ten days earlier is what a running desk pays for each later rebalance (``<rm>_resolve_s``).
    ``seed`` fixes numpy's RNG (the solve itself is deterministic). Returns seconds per solve.
    """
    from quorum_common.universe import INSTRUMENTS
    from skfolio.datasets import load_sp500_dataset

    np.random.seed(seed)
    returns_all = load_sp500_dataset().pct_change().iloc[1:]
    returns = returns_all.iloc[-days:]
    sectors = {s: INSTRUMENTS[s].sector if s in INSTRUMENTS else "Other" for s in returns.columns}
    out: dict = {"assets": returns.shape[1], "days": returns.shape[0], "solvers": list(solvers), "target_s": 0.5}
    small = returns.iloc[-50:, :2]  # warm-up: loads the solver libraries once, as a running service has
    optimise(Problem(small, dict.fromkeys(small.columns, "x"), dict.fromkeys(small.columns, "equity")), solvers)
    for rm in ("MDD", "CDAR"):
        for key, window in (("", returns), ("_resolve", returns_all.iloc[-days - 10:-10])):
            problem = Problem(window, sectors, dict.fromkeys(window.columns, "equity"), risk_measure=rm,
                              sector_caps=dict.fromkeys(set(sectors.values()), 0.30))
            result = optimise(problem, solvers)
            out[f"{rm.lower()}{key}_s"] = result.solve_ms / 1e3
            out[f"{rm.lower()}{key}_status"] = result.status
    return out
