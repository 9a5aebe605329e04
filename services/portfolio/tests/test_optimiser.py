"""The riskfolio-lib optimiser on real prices (skfolio's S&P 500 data set): caps, measures, fallback."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from quorum_common.universe import INSTRUMENTS
from quorum_portfolio import drawdown_program, optimiser
from quorum_portfolio.optimiser import Problem, benchmark_optimiser, capped_equal_weight, optimise
from skfolio.datasets import load_sp500_dataset

ENERGY_AS_COMMODITY = {"XOM", "CVX", "RRC"}


@pytest.fixture(scope="module")
def returns() -> pd.DataFrame:
    prices = load_sp500_dataset().iloc[-301:]
    return prices.pct_change().iloc[1:]


@pytest.fixture(scope="module")
def crash() -> pd.DataFrame:
    """2007-2008: the default mandate's drawdown bound was out of every portfolio's reach on such windows."""
    prices = load_sp500_dataset().loc["2007-01-01":"2008-12-31"]
    return prices.pct_change().iloc[1:]


def problem(returns: pd.DataFrame, **kw) -> Problem:
    sectors = {s: INSTRUMENTS[s].sector for s in returns.columns}
    classes = {s: "commodity" if s in ENERGY_AS_COMMODITY else "equity" for s in returns.columns}
    return Problem(returns, sectors, classes, **kw)


def by(weights: dict[str, float], labels: dict[str, str], name: str) -> float:
    return sum(w for s, w in weights.items() if labels[s] == name)


@pytest.mark.parametrize("rm", ["MDD", "CDAR"])
def test_caps_hold_and_weights_sum_to_one(returns: pd.DataFrame, rm: str) -> None:
    free = optimise(problem(returns, risk_measure=rm))
    caps = {"sector_caps": {"Health Care": 0.20, "Energy": 0.5}, "asset_class_caps": {"commodity": 0.10},
            "asset_caps": dict.fromkeys(returns.columns, 0.15)}
    capped = problem(returns, risk_measure=rm, **caps)
    result = optimise(capped)
    assert not free.fallback and not result.fallback and result.status == "optimal"
    # the caps bind: the free solution breaks at least one of them
    assert (by(free.weights, capped.sectors, "Health Care") > 0.20 + 1e-4
            or by(free.weights, capped.asset_classes, "commodity") > 0.10 + 1e-4
            or max(free.weights.values()) > 0.15 + 1e-4)
    assert sum(result.weights.values()) == pytest.approx(1.0, abs=1e-6)
    assert min(result.weights.values()) >= 0.0
    assert by(result.weights, capped.sectors, "Health Care") <= 0.20 + 1e-5
    assert by(result.weights, capped.asset_classes, "commodity") <= 0.10 + 1e-5
    assert max(result.weights.values()) <= 0.15 + 1e-5
    assert result.expected_risk is not None and result.expected_risk > 0
    assert result.solve_ms > 0


def test_minimum_weight_of_a_class_is_honoured(returns: pd.DataFrame) -> None:
    result = optimise(problem(returns, min_weights={"commodity": 0.3}))
    assert not result.fallback
    assert by(result.weights, problem(returns).asset_classes, "commodity") >= 0.3 - 1e-5


def test_drawdown_bound_limits_the_measure(returns: pd.DataFrame) -> None:
    free = optimise(problem(returns, risk_measure="MDD"))
    bound = free.expected_risk * 0.8
    bounded = optimise(problem(returns, risk_measure="MDD", upper_risk=bound))
    assert not bounded.fallback
    assert bounded.expected_risk <= bound + 1e-4


@pytest.mark.parametrize("kw", [
    {"sector_caps": {s: 0.03 for s in {i.sector for i in INSTRUMENTS.values()}}},  # caps sum below 1
    {"sector_caps": {s: 0.03 for s in {i.sector for i in INSTRUMENTS.values()}}, "upper_risk": 1e-5},  # both
])
def test_infeasible_problem_falls_back_without_raising(returns: pd.DataFrame, kw: dict) -> None:
    p = problem(returns, **kw)
    result = optimise(p)
    assert result.fallback and result.status.startswith("fallback")
    assert result.weights == capped_equal_weight(p, sorted(returns.columns))
    assert sum(result.weights.values()) <= 1.0 + 1e-9
    previous = {"AAPL": 0.5, "KO": 0.5}
    assert optimise(p, previous=previous).weights == previous


@pytest.mark.parametrize("rm", ["MDD", "CDAR"])
def test_a_bound_out_of_reach_holds_the_part_of_the_least_drawdown_portfolio_that_meets_it(
        crash: pd.DataFrame, rm: str) -> None:
    caps = {"sector_caps": {"Information Technology": 0.3}, "asset_caps": dict.fromkeys(crash.columns, 0.25)}
    least = optimise(problem(crash, risk_measure=rm, objective="MIN_RISK", **caps))
    bound = least.expected_risk * 0.6  # no fully invested portfolio within the caps drew down this little
    result = optimise(problem(crash, risk_measure=rm, upper_risk=bound, **caps), previous={"AAPL": 1.0})
    assert result.fallback and "60% of the least-drawdown portfolio" in result.status
    assert sum(result.weights.values()) == pytest.approx(0.6, abs=1e-6)  # the rest is cash
    for s, w in least.weights.items():
        assert result.weights[s] == pytest.approx(0.6 * w, abs=1e-9)
    assert result.expected_risk == pytest.approx(bound, rel=1e-6)  # drawdowns scale with the weights
    assert by(result.weights, problem(crash).sectors, "Information Technology") <= 0.3 * 0.6 + 1e-6


def test_a_bound_out_of_reach_with_minimum_weights_holds_the_least_drawdown_portfolio_whole(
        crash: pd.DataFrame) -> None:
    floors = {"min_weights": {"commodity": 0.2}}
    least = optimise(problem(crash, objective="MIN_RISK", **floors))
    result = optimise(problem(crash, upper_risk=least.expected_risk * 0.6, **floors))
    assert result.fallback and "the least-drawdown portfolio, whole" in result.status
    assert result.weights == pytest.approx(least.weights, abs=1e-9)
    assert by(result.weights, problem(crash).asset_classes, "commodity") >= 0.2 - 1e-5


def test_capped_equal_weight_obeys_every_cap(returns: pd.DataFrame) -> None:
    p = problem(returns, sector_caps={"Health Care": 0.1}, asset_class_caps={"commodity": 0.06},
                asset_caps={"AAPL": 0.01})
    w = capped_equal_weight(p, sorted(returns.columns))
    assert by(w, p.sectors, "Health Care") == pytest.approx(0.1)
    assert by(w, p.asset_classes, "commodity") == pytest.approx(0.06)
    assert w["AAPL"] == pytest.approx(0.01) and w["KO"] == pytest.approx(1 / 20)


def test_too_few_assets_fall_back(returns: pd.DataFrame) -> None:
    result = optimise(problem(returns[["AAPL"]]))
    assert result.fallback and result.weights == {"AAPL": 1.0}


def test_benchmark_times_both_measures() -> None:
    out = benchmark_optimiser(seed=0)
    assert (out["assets"], out["days"]) == (20, 1000)
    for key in ("mdd", "cdar", "mdd_resolve", "cdar_resolve"):
        assert out[f"{key}_status"] == "optimal" and 0 < out[f"{key}_s"] < 5


def test_a_failed_objective_falls_back_to_min_risk(returns: pd.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    real_solve = optimiser._solve

    def sharpe_fails(r: np.ndarray, p: Problem, constraints: tuple, solvers: tuple[str, ...]) -> np.ndarray | None:
        if p.objective == "MAX_SHARPE":
            raise RuntimeError("solver crashed")
        return real_solve(r, p, constraints, solvers)

    monkeypatch.setattr(optimiser, "_solve", sharpe_fails)
    p = problem(returns, sector_caps={"Health Care": 0.2})
    result = optimise(p)
    assert result.fallback and "MIN_RISK" in result.status and "solver crashed" in result.status
    assert sum(result.weights.values()) == pytest.approx(1.0, abs=1e-6)
    assert by(result.weights, p.sectors, "Health Care") <= 0.2 + 1e-5
    min_risk = optimise(problem(returns, sector_caps={"Health Care": 0.2}, objective="MIN_RISK"))
    assert not min_risk.fallback
    assert result.weights == pytest.approx(min_risk.weights, abs=1e-6)


def test_an_unbeatable_risk_free_rate_falls_back_to_the_same_min_risk_weights(returns: pd.DataFrame) -> None:
    """MAX_SHARPE is infeasible (no portfolio returns the risk-free rate); the retry solves MIN_RISK with the same
    class constraints and gets exactly what a MIN_RISK mandate gets."""
    kw = {"risk_measure": "CDAR", "risk_free_rate": 1.0, "sector_caps": {"Health Care": 0.2}}
    result = optimise(problem(returns, **kw))
    assert result.fallback and result.status == "fallback: MIN_RISK (MAX_SHARPE infeasible or no solver succeeded)"
    min_risk = optimise(problem(returns, objective="MIN_RISK", **kw))
    assert not min_risk.fallback
    assert result.weights == min_risk.weights and result.expected_risk == min_risk.expected_risk


def test_under_a_slack_bound_the_retry_is_the_minimum_risk_portfolio_under_it(returns: pd.DataFrame) -> None:
    """The retry solves without the bound; when its portfolio meets the bound it is the bounded minimum-risk one."""
    kw = {"risk_measure": "CDAR", "risk_free_rate": 1.0, "sector_caps": {"Health Care": 0.2}}
    least = optimise(problem(returns, objective="MIN_RISK", **kw))
    bound = least.expected_risk * 1.5
    result = optimise(problem(returns, upper_risk=bound, **kw))
    assert result.status == "fallback: MIN_RISK (MAX_SHARPE infeasible or no solver succeeded)"
    bounded = optimise(problem(returns, objective="MIN_RISK", upper_risk=bound, **kw))
    assert not bounded.fallback and sum(result.weights.values()) == pytest.approx(1.0, abs=1e-9)
    assert result.weights == pytest.approx(bounded.weights, abs=1e-5)
    assert result.expected_risk == pytest.approx(bounded.expected_risk, rel=1e-5) and result.expected_risk <= bound


def test_a_certified_infeasible_problem_is_not_handed_to_the_next_solver(
        returns: pd.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[tuple[str, str, str]] = []
    real = drawdown_program.solve

    def recording(r: np.ndarray, rm: str, objective: str, solver: str, **kw: object) -> drawdown_program.Outcome:
        out = real(r, rm, objective, solver, **kw)
        asked.append((objective, solver, out.status))
        return out

    monkeypatch.setattr(drawdown_program, "solve", recording)
    result = optimise(problem(returns, upper_risk=1e-5), ("CLARABEL", "SCS"))  # no portfolio draws down this little
    assert result.fallback
    assert asked == [("MAX_SHARPE", "CLARABEL", "infeasible"), ("MIN_RISK", "CLARABEL", "optimal")]  # unbounded


def test_a_solver_that_fails_without_a_certificate_hands_over_to_the_next(returns: pd.DataFrame) -> None:
    p = problem(returns, sector_caps={"Health Care": 0.2})
    handed_over = optimise(p, ("NOT_A_SOLVER", "CLARABEL"))  # cvxpy raises SolverError for the first
    assert not handed_over.fallback
    assert handed_over.weights == optimise(p, ("CLARABEL",)).weights
