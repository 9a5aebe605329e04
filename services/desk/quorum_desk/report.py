"""The run report: ``reports/<run id>/`` with ``index.html``, PNG charts and ``metrics.json``."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from quorum_common.bus.deadletter import DeadLetter
from quorum_common.event_dates import utc_date

from quorum_desk.metrics import NS_PER_YEAR, drawdown_series, performance
from quorum_desk.officer import OFFICER_ID
from quorum_desk.recorder import RunRecorder
from quorum_desk.report_letters import letters_html, letters_metrics, write_dead_letters

REGIME_COLOURS = {"TRENDING": "#2e7d32", "MEAN_REVERTING": "#1565c0", "HIGH_VOL": "#ef6c00", "CRISIS": "#c62828",
                  "UNKNOWN": "#9e9e9e"}


def _dates(ts: list[int]) -> list[datetime]:
    return [datetime.fromtimestamp(t / 1e9, UTC) for t in ts]


def _value_at(series: list[tuple[int, float]], times: list[int]) -> np.ndarray:
    """Last value of ``series`` at or before each time (NaN before the first)."""
    ts = np.array([t for t, _ in series])
    vals = np.array([v for _, v in series])
    idx = np.searchsorted(ts, np.array(times), side="right") - 1
    out = np.where(idx >= 0, vals[np.clip(idx, 0, None)], np.nan)
    return out


def benchmarks(rec: RunRecorder, times: list[int], capital: float, symbols: list[str]) -> dict[str, np.ndarray]:
    """Equal-weight buy-and-hold of ``symbols`` and the benchmark index, scaled to ``capital``."""
    out: dict[str, np.ndarray] = {}
    legs = []
    for s in symbols:
        if rec.closes.get(s):
            prices = _value_at(rec.closes[s], times)
            first = prices[~np.isnan(prices)]
            if len(first) and not np.isnan(prices[0]):
                legs.append(prices / first[0])
    if legs:
        out["equal-weight buy & hold"] = capital * np.nanmean(np.vstack(legs), axis=0)
    if rec.closes.get(rec.benchmark_symbol):
        idx = _value_at(rec.closes[rec.benchmark_symbol], times)
        if not np.isnan(idx[0]):
            out[rec.benchmark_symbol] = capital * idx / idx[0]
    return out


def run_window(rec: RunRecorder, times: list[int]) -> dict[str, str | None]:
    """The dates the report covers (its first and last snapshot) and, after a warm-up, where the replay began."""
    warmup = rec.report_from is not None and rec.first_ts is not None and rec.first_ts < rec.report_from
    return {"from": utc_date(times[0]).isoformat(), "to": utc_date(times[-1]).isoformat(),
            "warmup_from": utc_date(rec.first_ts).isoformat() if warmup else None}


def from_start(changes: list[tuple], start: int) -> list[tuple]:
    """Time-stamped changes (``(ts, ...)``, oldest first) as seen from ``start``: the one in force then, restamped
    ``start``, and those after it (a warm-up's regimes and trading states, before the report starts)."""
    before = [c for c in changes if c[0] <= start]
    return ([(start, *before[-1][1:])] if before else []) + [c for c in changes if c[0] > start]


def _save(fig: Any, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


class ReportError(ValueError):
    """The run gave too little to report on; the message says why and what to do."""


def build_report(rec: RunRecorder, out_dir: Path, run_id: str, wall_s: float, events: int,
                 optimiser_s: float = 0.0, dead_letters: Sequence[DeadLetter] = ()) -> dict[str, Any]:
    """Write the report folder; return the metrics written to ``metrics.json``. ``dead_letters``: the run's
    (:mod:`quorum_desk.report_letters`)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    letters = write_dead_letters(dead_letters, out_dir)  # kept even when there is nothing else to report
    if len(rec.equity) < 2:
        raise ReportError(f"the window holds {len(rec.equity)} trading session(s) (one portfolio snapshot each); a "
                          "report needs two or more: widen --start/--end")
    times = [t for t, _, _ in rec.equity]
    nav = np.array([n for _, n, _ in rec.equity])
    mandate = rec.mandate or {}
    capital = float(mandate.get("capital", nav[0]))
    limit = float(mandate.get("max_drawdown", float("nan")))
    universe = [u["symbol"] for u in mandate.get("universe", [])]
    perf = performance(times, nav.tolist(), rec.traded_notional, rec.fees, rec.wins, rec.closing_trades, rec.fills)
    bench = benchmarks(rec, times, capital, universe)
    dates = _dates(times)
    regimes, states = from_start(rec.regimes, times[0]), from_start(rec.states, times[0])
    charts = []

    fig, ax = plt.subplots(figsize=(10, 4.5))
    ax.plot(dates, nav, label="Quorum", linewidth=1.6)
    for name, series in bench.items():
        ax.plot(dates, series, label=name, linewidth=1.0, alpha=0.8)
    ax.set_title("Equity")
    ax.set_ylabel(mandate.get("base_currency", "USD"))
    ax.legend()
    charts.append(_save(fig, out_dir / "equity.png"))

    fig, ax = plt.subplots(figsize=(10, 3))
    dd = drawdown_series(nav)
    ax.fill_between(dates, -dd * 100, 0, color="#c62828", alpha=0.5, label="drawdown")
    if limit == limit:
        ax.axhline(-limit * 100, color="black", linestyle="--", linewidth=1, label=f"mandate limit {limit:.0%}")
    ax.set_ylabel("%")
    ax.set_title("Drawdown from peak")
    ax.legend(loc="lower left")
    charts.append(_save(fig, out_dir / "drawdown.png"))

    if regimes:
        fig, ax = plt.subplots(figsize=(10, 1.8))
        rts = [t for t, _ in regimes] + [times[-1]]
        for (t0, label), t1 in zip(regimes, rts[1:], strict=True):
            ax.axvspan(_dates([t0])[0], _dates([t1])[0], color=REGIME_COLOURS.get(label, "#9e9e9e"), linewidth=0)
        ax.set_yticks([])
        ax.set_title("Regime (" + ", ".join(f"{k}" for k in REGIME_COLOURS if k in {lb for _, lb in regimes}) + ")")
        handles = [plt.Rectangle((0, 0), 1, 1, color=c) for k, c in REGIME_COLOURS.items()]
        ax.legend(handles, list(REGIME_COLOURS), ncol=5, fontsize=7, loc="upper left")
        charts.append(_save(fig, out_dir / "regime.png"))

    fig, ax = plt.subplots(figsize=(6, 3))
    reasons = sorted(rec.rejects.items(), key=lambda kv: -kv[1])
    ax.barh([r for r, _ in reasons] or ["none"], [n for _, n in reasons] or [0], color="#6a1b9a")
    ax.set_title(f"Risk rejects by reason ({sum(rec.rejects.values())} of {sum(rec.rejects.values()) + rec.approvals})")
    charts.append(_save(fig, out_dir / "rejects.png"))

    attribution = sorted(rec.attribution.items(), key=lambda kv: kv[1].pnl_contribution)
    fig, ax = plt.subplots(figsize=(8, 0.4 * len(attribution) + 1.4))
    bars = ax.barh([a for a, _ in attribution] or ["none"], [t.pnl_contribution for _, t in attribution] or [0],
                   color=["#00838f" if t.pnl_contribution >= 0 else "#c62828" for _, t in attribution] or ["#00838f"])
    # each bar's value beside it: the allocation's contribution dwarfs the agents', whose bars would not show
    ax.bar_label(bars, labels=[f"{t.pnl_contribution:+,.0f}" for _, t in attribution] or [""], padding=3, fontsize=8)
    ax.margins(x=0.2)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel(mandate.get("base_currency", "USD"))
    ax.set_title(f"PnL contribution by agent over the run ({rec.critic_reports} critic windows)")
    charts.append(_save(fig, out_dir / "attribution.png"))

    breach = perf.max_drawdown - limit if limit == limit else None
    metrics = {
        "run_id": run_id,
        "window": run_window(rec, times),
        "performance": perf.as_dict(),
        "benchmarks": {k: {"end_value": float(v[-1]), "return": float(v[-1] / capital - 1)} for k, v in bench.items()},
        "drawdown_limit": limit,
        "drawdown_within_limit": breach is None or breach <= 0,
        "drawdown_breach": max(0.0, breach) if breach is not None else None,
        "rejects_by_reason": dict(rec.rejects),
        "approved_orders": rec.approvals,
        "decisions_by_action": dict(rec.actions),
        "trading_state_changes": [{"ts": t, "state": s, "reason": r, "by": b} for t, s, r, b in rec.states],
        "years_in_trading_state": time_in_state(states, times[-1]),
        "final_trading_state": final_state(states),
        "attribution": [{"agent_id": agent, "strategy": t.strategy, "pnl_contribution": t.pnl_contribution,
                         "signals": t.signals, "hit_rate": t.hit_rate, "scored_signals": t.scored_signals}
                        for agent, t in sorted(rec.attribution.items())],
        "critic_reports": rec.critic_reports,
        "records": dict(rec.counts),
        "events": events,
        "wall_seconds": wall_s,
        "events_per_second": events / wall_s if wall_s else None,
        "optimiser_seconds": optimiser_s,
        "dead_letters": letters_metrics(letters),
        "universe_without_bars": [symbol for symbol in universe if not rec.closes.get(symbol)],
        "universe_bars_ended": bars_ended(rec, universe, times[-1]),
    }
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, default=float) + "\n")
    (out_dir / "index.html").write_text(_html(metrics, mandate, charts, rec, letters))
    return metrics


def _html(metrics: dict[str, Any], mandate: dict[str, Any], charts: list[str], rec: RunRecorder,
          letters: list[dict[str, Any]]) -> str:
    perf = metrics["performance"]
    pct = {"cagr", "volatility", "max_drawdown", "hit_rate"}
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{(f'{v:.2%}' if k in pct else f'{v:,.4g}') if v is not None else 'n/a'}"
        "</td></tr>" for k, v in perf.items()
    )
    limit = metrics["drawdown_limit"]
    if metrics["drawdown_within_limit"]:
        verdict = f"Realised maximum drawdown {perf['max_drawdown']:.2%} stayed within the mandate's {limit:.0%}."
    else:
        verdict = (f"Realised maximum drawdown {perf['max_drawdown']:.2%} breached the mandate's {limit:.0%} by "
                   f"{metrics['drawdown_breach']:.2%}. {_breach_reason(rec)}")
    notes = _locked_note(metrics, rec)
    if metrics["universe_without_bars"]:
        notes += f"<p><strong>{html.escape(no_bars_note(metrics['universe_without_bars']))}</strong></p>"
    if metrics["universe_bars_ended"]:
        notes += f"<p><strong>{html.escape(bars_ended_note(metrics['universe_bars_ended']))}</strong></p>"
    agents = "".join(_agent_row(a) for a in sorted(metrics["attribution"], key=lambda a: -a["pnl_contribution"]))
    images = "".join(f'<figure><img src="{c}" alt="{c}"></figure>' for c in charts)
    states = "".join(
        f"<li>{datetime.fromtimestamp(t / 1e9, UTC):%Y-%m-%d} {html.escape(s)} by {html.escape(b)}: "
        f"{html.escape(r)}</li>" for t, s, r, b in rec.states
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Quorum run {metrics['run_id']}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}}
table{{border-collapse:collapse}}th,td{{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left}}
img{{max-width:100%}}figure{{margin:1em 0}}</style></head><body>
<h1>Quorum run {metrics['run_id']}</h1>
<p>Mandate {html.escape(str(mandate.get('mandate_id', '?')))}: capital {mandate.get('capital', 0):,.0f}
{html.escape(str(mandate.get('base_currency', '')))}, {html.escape(str(mandate.get('risk_tolerance', '')))},
max drawdown {limit:.0%}, risk measure {html.escape(str(mandate.get('risk_measure', '')))}.</p>
<p>{_window_line(metrics["window"])}</p>
<p><strong>{verdict}</strong></p>
{notes}
<table>{rows}</table>
<p>{metrics['events']:,} events in {metrics['wall_seconds']:.1f} s ({metrics['events_per_second'] or 0:,.0f} events/s,
optimiser {metrics['optimiser_seconds']:.1f} s).</p>
{images}
<h2>Agents</h2>
<table><tr><th>agent</th><th>strategy</th><th>PnL contribution</th><th>signals</th>
<th>hit rate (of the signals scored)</th></tr>
{agents or '<tr><td colspan="5">no critic report</td></tr>'}</table>
<h2>Trading state changes</h2><ul>{states or '<li>none</li>'}</ul>
{letters_html(letters)}
</body></html>
"""


def no_bars_note(symbols: list[str]) -> str:
    """What the report and the command line say of mandate symbols that got no bar in the replay."""
    them = "it" if len(symbols) == 1 else "them"
    return (f"No bar in the replay for {', '.join(symbols)} (in the mandate's universe): the desk could not trade "
            f"{them} in this window.")


ENDED_EARLY_NS = 31 * 86_400 * 10**9
"""A symbol whose last bar is further than this before the report's end had its data end early (a month: the
bundled BTC-USD has a bar a month)."""


def bars_ended(rec: RunRecorder, universe: list[str], end_ts: int) -> dict[str, str]:
    """The mandate symbols whose bars ended more than :data:`ENDED_EARLY_NS` before ``end_ts``, with their last bar's
    date (a window past the end of their data: the desk held them at a stale price from then on)."""
    ended = {}
    for symbol in universe:
        closes = rec.closes.get(symbol)
        if closes and end_ts - closes[-1][0] > ENDED_EARLY_NS:
            ended[symbol] = utc_date(closes[-1][0]).isoformat()
    return ended


def bars_ended_note(ended: dict[str, str]) -> str:
    """What the report and the command line say of symbols whose data ended before the window (see
    :func:`bars_ended`)."""
    by_date: dict[str, list[str]] = {}
    for symbol, day in ended.items():
        by_date.setdefault(day, []).append(symbol)
    listed = "; ".join(f"{', '.join(symbols)} on {day}" for day, symbols in sorted(by_date.items()))
    return (f"The bars of some of the mandate's symbols end before the window does: {listed}. From then on the desk "
            "held them at their last price and could not trade them; the report's figures cover that time too.")


def _window_line(window: dict[str, str | None]) -> str:
    """The report's sentence on the dates it covers and the warm-up before them, if any."""
    line = f"From {window['from']} to {window['to']}."
    if window["warmup_from"]:
        line += (f" The desk warmed up from {window['warmup_from']} (history replayed, no order proposed); "
                 "the figures, charts and agent table start at the first date.")
    return line


def _agent_row(agent: dict[str, Any]) -> str:
    """One agent's row of the report's table: PnL contribution, signals, hit rate over the signals scored."""
    hit = agent["hit_rate"]
    hit_text = f"{hit:.1%} of {agent['scored_signals']:,}" if hit is not None else "n/a"
    return (f"<tr><td>{html.escape(agent['agent_id'])}</td><td>{html.escape(agent['strategy'])}</td>"
            f"<td>{agent['pnl_contribution']:,.0f}</td><td>{agent['signals']:,}</td><td>{hit_text}</td></tr>")


def time_in_state(states: list[tuple[int, str, str, str]], end_ts: int) -> dict[str, float]:
    """Years the desk spent in each trading state, from the first recorded state change to ``end_ts``."""
    years: dict[str, float] = {}
    for (ts, state, _, _), nxt in zip(states, [*(s[0] for s in states[1:]), end_ts], strict=True):
        years[state] = years.get(state, 0.0) + max(0, nxt - ts) / NS_PER_YEAR
    return years


def final_state(states: list[tuple[int, str, str, str]]) -> dict[str, Any] | None:
    """The state the run ended in: since when (its first change into it) and why; None without changes."""
    if not states:
        return None
    state = states[-1][1]
    first = len(states) - 1
    while first > 0 and states[first - 1][1] == state:
        first -= 1
    ts, _, reason, by = states[first]
    return {"state": state, "since_ts": ts, "reason": reason, "by": by}


def _locked_note(metrics: dict[str, Any], rec: RunRecorder) -> str:
    """A paragraph for a run that ended outside ACTIVE: since when, why, and for how much of the run."""
    final = metrics["final_trading_state"]
    if final is None or final["state"] == "ACTIVE":
        return ""
    years = (rec.equity[-1][0] - final["since_ts"]) / NS_PER_YEAR
    since = datetime.fromtimestamp(final["since_ts"] / 1e9, UTC)
    run_years = metrics["performance"]["years"]
    return (f"<p><strong>The desk ended the run {html.escape(final['state'])}, as it had been since {since:%Y-%m-%d} "
            f"({html.escape(final['reason'])}): the last {years:.1f} of the run's {run_years:.1f} years. In that "
            "state no risk-increasing order passes until a risk officer resumes trading (admin API "
            "<code>POST /resume</code>); in an embedded run only the simulated officer of "
            "<code>--resume-after-days</code> does.</strong></p>")


def _breach_reason(rec: RunRecorder) -> str:
    """Why the drawdown went past the limit, from the run's own record of state changes."""
    locks = [(t, s, r) for t, s, r, _ in rec.states if s in ("REDUCING", "HALTED")]
    if not locks:
        return ("The drawdown lock never fired: the losses came between two risk checks, faster than the lock "
                "level could be seen (see the drawdown chart).")
    ts, state, reason = locks[0]
    times = np.array([t for t, _, _ in rec.equity])
    dd = np.array([d for _, _, d in rec.equity])
    at_lock = float(dd[max(0, int(np.searchsorted(times, ts, side="right")) - 1)])
    when = utc_date(ts).isoformat()
    resumes = [t for t, s, _, by in rec.states if s == "ACTIVE" and by == OFFICER_ID]
    count = f"{len(resumes)} time{'s' * (len(resumes) != 1)}"
    officer = (f" The simulated risk officer (--resume-after-days) resumed trading {count}, first on "
               f"{datetime.fromtimestamp(resumes[0] / 1e9, UTC):%Y-%m-%d}; a resume beyond the lock level accepts "
               "that loss, and the lock fires again only a step (the risk service's drawdown_relock_step) deeper, "
               "so the resumed desk may lose more." if resumes else "")
    return (f"The drawdown lock moved the desk to {state} on {when} at a drawdown of {at_lock:.2%} ({reason}). "
            "In that state no risk-increasing order passes and the portfolio sells down to its reduced targets "
            "(nothing, with its exposure scaling: at the lock the drawdown budget is spent; half, without it), "
            "so what it still held went on losing until those sells filled, the market turned or a risk officer "
            "acted." + officer)
