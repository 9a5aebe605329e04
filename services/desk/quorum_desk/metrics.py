"""Performance metrics of an equity curve (daily observations, no risk-free rate)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

TRADING_DAYS = 252
NS_PER_DAY = 86_400 * 10**9
NS_PER_YEAR = 365.25 * NS_PER_DAY


@dataclass(frozen=True)
class Performance:
    """Headline figures of a run; every ratio is annualised."""

    start_nav: float
    end_nav: float
    years: float
    cagr: float
    volatility: float
    sharpe: float
    sortino: float
    max_drawdown: float
    calmar: float
    turnover: float
    fees: float
    hit_rate: float | None
    trades: int

    def as_dict(self) -> dict[str, float | int | None]:
        """The figures as a JSON-ready mapping."""
        return asdict(self)


def drawdown_series(nav: np.ndarray) -> np.ndarray:
    """Drawdown from the running peak at each point, as a non-negative fraction."""
    peak = np.maximum.accumulate(nav)
    return 1.0 - nav / peak


def performance(ts_ns: list[int], nav: list[float], traded_notional: float = 0.0, fees: float = 0.0,
                wins: int = 0, closes: int = 0, trades: int = 0) -> Performance:
    """Figures of an equity curve sampled at ``ts_ns``.

    ``traded_notional`` over the run gives turnover (traded value / average NAV per year);
    ``wins``/``closes`` (profitable closing trades / closing trades) give the hit rate.
    """
    values = np.asarray(nav, dtype=float)
    if len(values) < 2:
        raise ValueError("an equity curve needs at least two points")
    years = max((ts_ns[-1] - ts_ns[0]) / NS_PER_YEAR, 1e-9)
    rets = values[1:] / values[:-1] - 1.0
    mean, std = float(rets.mean()), float(rets.std(ddof=1)) if len(rets) > 1 else 0.0
    downside = rets[rets < 0]
    down_std = float(np.sqrt(np.mean(downside**2))) if len(downside) else 0.0
    cagr = (values[-1] / values[0]) ** (1.0 / years) - 1.0
    max_dd = float(drawdown_series(values).max())
    return Performance(
        start_nav=float(values[0]),
        end_nav=float(values[-1]),
        years=years,
        cagr=cagr,
        volatility=std * math.sqrt(TRADING_DAYS),
        sharpe=mean / std * math.sqrt(TRADING_DAYS) if std > 0 else 0.0,
        sortino=mean / down_std * math.sqrt(TRADING_DAYS) if down_std > 0 else 0.0,
        max_drawdown=max_dd,
        calmar=cagr / max_dd if max_dd > 0 else 0.0,
        turnover=traded_notional / float(values.mean()) / years,
        fees=fees,
        hit_rate=wins / closes if closes else None,
        trades=trades,
    )
