"""What a desk run keeps for its report, gathered from every delivered record (a bus tap)."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from quorum_common.bus.message import Message

_KEPT_IN_WARMUP = frozenset({"md.bars", "regime.state", "control.state", "control.commands", "mandate.compiled"})


@dataclass
class AgentTotals:
    """One agent's attribution summed over every critic report of a run (the reports' windows do not overlap)."""

    strategy: str
    pnl_contribution: float = 0.0
    signals: int = 0
    hits: int = 0
    scored_signals: int = 0

    @property
    def hit_rate(self) -> float | None:
        """Right directional signals over those scored, over the whole run; None when none was scored."""
        return self.hits / self.scored_signals if self.scored_signals else None


@dataclass
class RunRecorder:
    """Compact history of a run: equity, prices, regimes, verdicts, fills, state changes."""

    benchmark_symbol: str = "SPX"
    counts: Counter = field(default_factory=Counter)
    equity: list[tuple[int, float, float]] = field(default_factory=list)  # ts, nav, drawdown
    closes: dict[str, list[tuple[int, float]]] = field(default_factory=lambda: defaultdict(list))
    regimes: list[tuple[int, str]] = field(default_factory=list)
    rejects: Counter = field(default_factory=Counter)
    approvals: int = 0
    actions: Counter = field(default_factory=Counter)
    traded_notional: float = 0.0
    fees: float = 0.0
    fills: int = 0
    wins: int = 0
    closing_trades: int = 0
    states: list[tuple[int, str, str, str]] = field(default_factory=list)  # ts, state, reason, by
    commands: list[tuple[int, str, str, str]] = field(default_factory=list)  # ts, command, issued_by, reason
    mandate: dict[str, Any] | None = None
    attribution: dict[str, AgentTotals] = field(default_factory=dict)
    """Per agent id: PnL contribution, signals and hit rate over the whole run (summed over the critic's report
    windows)."""
    critic_reports: int = 0
    optimiser_s: float = 0.0
    report_from: int | None = None
    """Event time the report starts at (a warm-up's end: the portfolio's ``trade_from``); None: the first record.
    Before it only the prices, regimes, trading states, commands and mandate are kept (what the report's start
    needs), and the records are counted."""
    first_ts: int | None = None
    """Event time of the run's first record (where a warm-up began)."""
    _avg_cost: dict[str, tuple[float, float]] = field(default_factory=dict)

    def record(self, msg: Message) -> None:
        """Tap callback for every delivered record."""
        topic, v = msg.topic, msg.value
        self.counts[topic] += 1
        if self.first_ts is None:
            self.first_ts = msg.ts_event
        if self.report_from is not None and msg.ts_event < self.report_from and topic not in _KEPT_IN_WARMUP:
            return
        if topic == "md.bars":
            self.closes[v["symbol"]].append((v["ts_event"], v["close"]))
        elif topic == "portfolio.snapshots":
            self.equity.append((v["ts_event"], v["nav"], v["drawdown"]))
        elif topic == "regime.state":
            self.regimes.append((v["ts_event"], v["label"]))
        elif topic == "risk.decisions":
            if v["verdict"] == "REJECTED":
                self.rejects[v["reason_code"]] += 1
            else:
                self.approvals += 1
        elif topic == "signals.decisions":
            self.actions[v["action"]] += 1
        elif topic == "exec.fills":
            self._fill(v)
        elif topic == "control.state":
            self.states.append((v["ts_event"], v["state"], v["reason"], v["changed_by"]))
        elif topic == "control.commands":
            self.commands.append((v["ts_event"], v["command"], v["issued_by"], v["reason"]))
        elif topic == "mandate.compiled":
            self.mandate = v
        elif topic == "critic.reports":
            self._critic_report(v)
        elif topic == "portfolio.targets":
            self.optimiser_s += (v.get("solve_ms") or 0.0) / 1000.0

    def _critic_report(self, v: dict[str, Any]) -> None:
        self.critic_reports += 1
        for agent in v["attribution"]:
            totals = self.attribution.setdefault(agent["agent_id"], AgentTotals(agent["strategy"]))
            totals.pnl_contribution += agent["pnl_contribution"]
            totals.signals += agent["signals"]
            scored = agent["scored_signals"]
            totals.scored_signals += scored
            totals.hits += round((agent["hit_rate"] or 0.0) * scored)  # the window's count of right signals

    def _fill(self, v: dict[str, Any]) -> None:
        self.fills += 1
        self.traded_notional += abs(v["quantity"] * v["price"])
        self.fees += v["fee"]
        qty, cost = self._avg_cost.get(v["symbol"], (0.0, 0.0))
        if v["side"] == "BUY":
            new_qty = qty + v["quantity"]
            self._avg_cost[v["symbol"]] = (new_qty, (qty * cost + v["quantity"] * v["price"]) / new_qty)
        else:
            self.closing_trades += 1
            self.wins += v["price"] > cost
            self._avg_cost[v["symbol"]] = (max(0.0, qty - v["quantity"]), cost)
