"""Settings of the portfolio service (environment variables ``QUORUM_*``)."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field, field_validator
from quorum_common.runtime.config import ServiceSettings

_SOLVERS = {"CLARABEL", "SCS", "HIGHS", "OSQP", "SCIPY", "ECOS", "MOSEK"}


class PortfolioSettings(ServiceSettings):
    """Parameters of the ledger, the optimiser, the decision tilt and the rebalancer."""

    service_name: str = "portfolio"
    portfolio_id: str = Field("main", min_length=1, description="Id of the portfolio this service keeps.")
    mandate_id: str | None = Field(None, description="Only follow this compiled mandate id (None: any).")
    lookback_bars: int = Field(504, ge=20, description="Trailing bars of returns given to the optimiser.")
    min_history_bars: int = Field(60, ge=2, description="Returns a symbol needs before the optimiser includes it.")
    reoptimise_bars: int = Field(21, ge=1, description="Sessions between two optimiser solves (the expensive part).")
    solvers: tuple[str, ...] = Field(("CLARABEL", "SCS"), min_length=1, description="cvxpy solvers, tried in order.")
    optimiser_worker: Literal["inline", "early", "process"] = Field(
        "inline", description="Where solves run: inline (the rebalance tick waits; reproducible), early (started in a "
        "worker process at BAR_CLOSE, landing as inline does: reproducible, a shorter wait; lockstep services) or "
        "process (a worker process: no record waits for a solve, its weights land at the first tick after it "
        "finished).")
    solve_lag_sessions: int = Field(
        0, ge=0, le=21, description="Sessions between the rebalance tick that asks for a solve and the one that uses "
        "its weights (and runs the rebalance it was asked for). 0: the same tick waits for it. With 1 or more the "
        "solve, started early, runs while the desk handles the sessions between, so no order waits for it; the "
        "trade is that many sessions later, on returns that end at the session that asked. The same in every run "
        "mode, so a replay and the embedded desk still agree.")
    periods_per_year: int = Field(252, ge=1, description="Bars per year (annualises the risk-free rate and returns).")
    tilt: float = Field(0.5, ge=0.0, le=1.0, description="Target weight × (1 + tilt × decision score).")
    decision_max_age_days: float = Field(5.0, gt=0.0, description="Older decisions no longer tilt the targets.")
    strong_sell_to_zero: bool = Field(True, description="A STRONG_SELL decision cuts the target weight to 0.")
    cash_buffer: float = Field(0.01, ge=0.0, lt=0.5, description="NAV fraction kept uninvested against price moves.")
    exposure_scaling: bool = Field(
        True, description="Scale the targets by the drawdown budget left before the lock and by the mandate's "
        "volatility target (quorum_portfolio.exposure); False: hold them in full until the drawdown lock fires.")
    size_by_bar_interval: bool = Field(
        True, description="Divide the cap of an instrument with a bar only every k sessions (monthly bars in a daily "
        "desk) by √k, since the desk cannot trade it in between (quorum_portfolio.trading_interval).")
    volatility_window_bars: int = Field(
        63, ge=2, description="Trailing sessions over which every rebalance tick measures its targets' volatility "
        "(what the mandate's target_volatility is held to).")
    volatility_short_window_bars: int = Field(
        21, ge=2, description="The targets' volatility is the higher of that over volatility_window_bars and over "
        "this many last sessions (a turn to turbulence shows there first).")
    reducing_target_scale: float = Field(
        0.5, ge=0.0, le=1.0, description="Targets are scaled by this while the desk is REDUCING (drawdown lock).")
    fractional_asset_classes: tuple[str, ...] = Field(
        ("crypto", "fx"), description="Asset classes traded in fractional quantities (others: whole units)."
    )
    fractional_step: float = Field(1e-6, gt=0.0, le=1.0, description="Quantity step of fractional asset classes.")
    inflight_timeout_bars: int = Field(
        5, ge=1, description="Bars of its symbol after which an unanswered order stops blocking it (and no longer "
        "counts against the gross exposure room).")
    rebalance_tick: Literal["REBALANCE", "SESSION_CLOSE"] = Field(
        "REBALANCE", description="The sys.clock tick kind at which the portfolio rebalances (phases.py).")
    exec_algo: Literal["IMMEDIATE", "TWAP", "RL"] = Field("IMMEDIATE", description="Execution algorithm asked for.")
    trade_from: date | None = Field(
        None, description="First date (UTC) on which the portfolio proposes orders. Before it the desk warms up: the "
        "books, the optimiser's history and solves (every reoptimise_bars sessions) and the snapshots go on, but no "
        "rebalance runs; the first session from this date rebalances (INITIAL). None: trade from the first bar.")

    @field_validator("solvers")
    @classmethod
    def _known_solvers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [s for s in value if s.upper() not in _SOLVERS]
        if unknown:
            raise ValueError(f"solvers: unknown {unknown}; known: {sorted(_SOLVERS)}")
        return tuple(s.upper() for s in value)
