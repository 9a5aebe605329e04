"""Optimiser: one MDD and one CDaR max-Sharpe solve, 20 assets x 1000 days (target <= 0.5 s each)."""

from __future__ import annotations

from quorum_common.benchjson import Figure, write_result
from quorum_portfolio.optimiser import benchmark_optimiser


def run() -> None:
    """Time both solves and write ``bench/results/optimiser.json``."""
    out = benchmark_optimiser(seed=0)
    write_result("optimiser", [Figure("MDD max-Sharpe solve", round(out["mdd_s"], 4), "s", 0.5),
                               Figure("CDaR max-Sharpe solve", round(out["cdar_s"], 4), "s", 0.5),
                               Figure("MDD max-Sharpe re-solve, same shape", round(out["mdd_resolve_s"], 4), "s", 0.5),
                               Figure("CDaR max-Sharpe re-solve, same shape", round(out["cdar_resolve_s"], 4), "s",
                                      0.5)],
                 notes=f"{out['assets']} assets x {out['days']} days (skfolio S&P 500), solvers {out['solvers']}, "
                       "sector caps 0.30, after a tiny warm-up solve; a first solve compiles the problem's program "
                       "(quorum_portfolio.drawdown_program), a re-solve (the window 10 days earlier) reuses it, as "
                       "each later rebalance of a running desk does")


if __name__ == "__main__":
    run()
