"""The compiled drawdown program against riskfolio's own ``Portfolio.optimization`` on real prices."""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import pandas as pd
import pytest
import riskfolio as rp
from quorum_common.universe import INSTRUMENTS
from quorum_portfolio import drawdown_program
from quorum_portfolio.optimiser import Problem, constraint_table
from skfolio.datasets import load_sp500_dataset

BINDING_BOUNDS = {"MDD": 0.15, "CDAR": 0.12}  # feasible on every window below, and binding on some
RISKFOLIO_OBJECTIVES = {"MAX_SHARPE": "Sharpe", "MIN_RISK": "MinRisk", "MAX_RETURN": "MaxRet", "MAX_UTILITY": "Utility"}
RISKFOLIO_MEASURES = {"MDD": "MDD", "CDAR": "CDaR"}


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    return load_sp500_dataset().pct_change().iloc[1:]


def window(history: pd.DataFrame, end: int, days: int = 300) -> pd.DataFrame:
    return history.iloc[end - days:end]


def problem(returns: pd.DataFrame, **kw: object) -> Problem:
    sectors = {s: INSTRUMENTS[s].sector for s in returns.columns}
    return Problem(returns, sectors, dict.fromkeys(returns.columns, "equity"),
                   sector_caps=dict.fromkeys(set(sectors.values()), 0.3), asset_caps={"AAPL": 0.1}, **kw)


def riskfolio_weights(p: Problem) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """What riskfolio's ``optimization`` gives for ``p``, and the class constraints it was given."""
    symbols = sorted(p.returns.columns)
    port = rp.Portfolio(returns=p.returns[symbols])
    port.alpha = p.cdar_alpha
    table, classes = constraint_table(p, symbols)
    port.ainequality, port.binequality = rp.assets_constraints(table, classes)
    if p.upper_risk is not None:
        setattr(port, "upperCDaR" if p.risk_measure == "CDAR" else "uppermdd", p.upper_risk)
    port.assets_stats(method_mu="hist", method_cov="hist")
    port.solvers = ["CLARABEL"]
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        w = port.optimization(model="Classic", rm=RISKFOLIO_MEASURES[p.risk_measure],
                              obj=RISKFOLIO_OBJECTIVES[p.objective], rf=p.risk_free_rate,
                              l=drawdown_program.UTILITY_AVERSION, hist=True)
    a, b = np.asarray(port.ainequality, float), np.asarray(port.binequality, float)
    return (None if w is None else w.iloc[:, 0].to_numpy()), a, b


def compiled(p: Problem, a: np.ndarray | None, b: np.ndarray | None) -> drawdown_program.Outcome:
    r = p.returns[sorted(p.returns.columns)].to_numpy()
    return drawdown_program.solve(r, p.risk_measure, p.objective, "CLARABEL", a=a, b=b, upper=p.upper_risk,
                                  rf=p.risk_free_rate, cdar_alpha=p.cdar_alpha)


@pytest.mark.parametrize("rm", ["MDD", "CDAR"])
@pytest.mark.parametrize("objective", drawdown_program.OBJECTIVES)
@pytest.mark.parametrize("bounded", [False, True])
def test_the_weights_are_riskfolios(history: pd.DataFrame, rm: str, objective: str, bounded: bool) -> None:
    upper = BINDING_BOUNDS[rm] if bounded else None
    for end in (2500, 5200, 7900):  # 1999, 2010, 2020: a boom, a recovery and a crash
        p = problem(window(history, end), risk_measure=rm, objective=objective, upper_risk=upper)
        expected, a, b = riskfolio_weights(p)
        out = compiled(p, a, b)
        assert expected is not None and out.status == "optimal"
        np.testing.assert_allclose(out.weights, expected, atol=1e-6)


def test_all_negative_means_take_riskfolios_other_sharpe_program(history: pd.DataFrame) -> None:
    losing = window(history, 5200) - 0.01  # every asset loses 1 % a day on top of its returns
    p = problem(losing, risk_measure="CDAR")
    expected, a, b = riskfolio_weights(p)
    out = compiled(p, a, b)
    assert (losing.mean() < 0).all() and expected is not None
    np.testing.assert_allclose(out.weights, expected, atol=1e-6)
    for returns, negative in ((losing, True), (window(history, 5200), False)):
        r = returns.to_numpy()
        shape = drawdown_program.shape_of(r, r.mean(axis=0), "CDAR", "MAX_SHARPE", a, None)
        assert shape.all_means_negative is negative


def test_a_solve_gives_the_same_bits_whatever_was_solved_before(history: pd.DataFrame) -> None:
    p = problem(window(history, 6000), risk_measure="MDD", upper_risk=0.3)
    _, a, b = riskfolio_weights(p)
    first = compiled(p, a, b).weights
    compiled(problem(window(history, 3000), risk_measure="MDD", upper_risk=0.3), a, b)  # same shape, other data
    again = compiled(p, a, b).weights
    drawdown_program._program.cache_clear()
    fresh = compiled(p, a, b).weights
    assert first is not None and np.array_equal(first, again) and np.array_equal(first, fresh)


def test_a_shape_is_compiled_once(history: pd.DataFrame) -> None:
    drawdown_program._program.cache_clear()
    p = problem(window(history, 4000), risk_measure="CDAR", upper_risk=0.3)
    _, a, b = riskfolio_weights(p)
    for end in (4000, 4100, 4200):
        compiled(problem(window(history, end), risk_measure="CDAR", upper_risk=0.3), a, b)
    info = drawdown_program._program.cache_info()
    assert (info.misses, info.hits) == (1, 2)


def test_an_unknown_measure_or_objective_is_refused(history: pd.DataFrame) -> None:
    r = window(history, 4000).to_numpy()
    with pytest.raises(ValueError, match="VAR/MAX_SHARPE"):
        drawdown_program.solve(r, "VAR", "MAX_SHARPE", "CLARABEL")
    with pytest.raises(ValueError, match="MDD/KELLY"):
        drawdown_program.solve(r, "MDD", "KELLY", "CLARABEL")


def test_half_a_class_constraint_is_refused(history: pd.DataFrame) -> None:
    p = problem(window(history, 4000))
    _, a, b = riskfolio_weights(p)
    r = p.returns[sorted(p.returns.columns)].to_numpy()
    for half in ({"a": a}, {"b": b}):
        with pytest.raises(ValueError, match="both a and b"):
            drawdown_program.solve(r, "MDD", "MIN_RISK", "CLARABEL", **half)


def test_an_unknown_solver_is_an_outcome_not_an_exception(history: pd.DataFrame) -> None:
    out = drawdown_program.solve(window(history, 4000).to_numpy(), "MDD", "MIN_RISK", "NOT_A_SOLVER")
    assert (out.weights, out.status) == (None, "solver_error")
