"""``quorum-desk run --warmup``: history replayed before the first date without trading; the report starts there."""

from __future__ import annotations

import argparse
import json
from datetime import date

import pytest
from quorum_common.event_dates import day_ns
from quorum_desk.app import main, run_overrides
from quorum_desk.engine import run_embedded
from quorum_desk.report import build_report, from_start

START, END = "2008-01-02", "2008-04-30"


def args(**kw: object) -> argparse.Namespace:
    base = {"mandate": None, "start": None, "end": None, "warmup": 0, "resume_after_days": None}
    return argparse.Namespace(**{**base, **kw})


def test_warmup_moves_the_replay_start_back_and_the_trading_start_to_the_first_date() -> None:
    first = date(2010, 1, 1)
    overrides = run_overrides(args(start=first, end=date(2010, 6, 30), warmup=365))
    assert overrides["ingest"] == {"start": date(2009, 1, 1), "end": date(2010, 6, 30)}
    assert overrides["portfolio"] == overrides["critic"] == {"trade_from": first}
    default = run_overrides(args(warmup=10))  # no --start: before the replay's default first date
    assert default["portfolio"] == {"trade_from": date(2005, 1, 1)}
    assert default["ingest"] == {"start": date(2004, 12, 22)}
    assert not {"portfolio", "critic"} & set(run_overrides(args(start=first)))  # no warm-up: trade from the first bar


def test_a_warmed_up_run_trades_from_its_first_date_and_reports_from_there(desk_window, tmp_path) -> None:
    trade_from, week = date.fromisoformat(START), 7 * 86_400 * 10**9
    fills: dict[str, list[int]] = {"cold": [], "warm": []}
    cold = run_embedded(desk_window(START, END), extra_taps=[
        lambda m: m.topic == "exec.fills" and fills["cold"].append(m.ts_event)])
    cold_window = build_report(cold.recorder, tmp_path / "cold", "cold", cold.wall_s, cold.events)["window"]
    assert cold_window == {"from": START, "to": END, "warmup_from": None}
    warm = run_embedded(desk_window("2007-01-02", END, portfolio={"trade_from": trade_from}),
                        extra_taps=[lambda m: m.topic == "exec.fills" and fills["warm"].append(m.ts_event)])
    # cold, the optimiser first needs its sessions of history; warmed up, the desk buys in its first days
    assert min(fills["cold"]) > day_ns(trade_from) + 8 * week
    assert day_ns(trade_from) <= min(fills["warm"]) < day_ns(trade_from) + week
    metrics = build_report(warm.recorder, tmp_path, "warm", warm.wall_s, warm.events)
    first_ts = warm.recorder.equity[0][0]
    assert day_ns(trade_from) <= first_ts < day_ns(trade_from) + week
    assert warm.recorder.fills == len(fills["warm"])
    assert metrics["performance"]["years"] == pytest.approx(0.33, abs=0.01)  # the window, not the warm-up
    assert json.loads((tmp_path / "metrics.json").read_text())["performance"]["start_nav"] == 1_000_000  # untouched
    assert metrics["window"] == {"from": START, "to": END, "warmup_from": "2007-01-03"}  # its first trading days
    assert "warmed up from 2007-01-03" in (tmp_path / "index.html").read_text()
    assert sum(metrics["years_in_trading_state"].values()) == pytest.approx(metrics["performance"]["years"])
    assert metrics["decisions_by_action"] and sum(metrics["decisions_by_action"].values()) < \
        warm.recorder.counts["signals.decisions"]  # the warm-up's decisions are counted, not reported


def test_the_critic_tightens_nothing_in_a_warm_up_and_once_when_trading_starts_in_high_volatility(desk_window) -> None:
    # 2007-2008 holds three shifts into HIGH_VOL; the desk starts trading on 2009-01-02 in HIGH_VOL
    trade_from = date(2009, 1, 2)
    run = run_embedded(desk_window("2007-01-02", "2009-02-27", portfolio={"trade_from": trade_from},
                                   critic={"trade_from": trade_from}))
    warm_up = [label for ts, label in run.recorder.regimes if ts < day_ns(trade_from)]
    assert warm_up.count("HIGH_VOL") > 1 and "TRENDING" in warm_up
    critic = [(ts, reason) for ts, _command, by, reason in run.recorder.commands if by == "critic"]
    assert critic and min(ts for ts, _ in critic) >= day_ns(trade_from)
    assert critic[0] == (run.recorder.regimes[len(warm_up)][0], "trading starts in regime HIGH_VOL")


def test_changes_before_the_report_start_are_seen_from_it() -> None:
    changes = [(1, "TRENDING"), (5, "HIGH_VOL"), (9, "TRENDING")]
    assert from_start(changes, 7) == [(7, "HIGH_VOL"), (9, "TRENDING")]
    assert from_start(changes, 0) == changes
    assert from_start(changes, 5) == [(5, "HIGH_VOL"), (9, "TRENDING")]


def test_a_run_without_a_trade_says_why_and_how_to_warm_up(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("QUORUM_SYMBOLS", json.dumps(["AAPL", "MSFT", "KO", "PEP", "SPX"]))
    assert main(["run", "--start", "2010-01-04", "--end", "2010-02-26", "--reports", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "no trade" in out and "--warmup DAYS" in out


@pytest.mark.parametrize(("flag", "value"), [("--warmup", "-3"), ("--warmup", "a year"), ("--start", "2010-13-01")])
def test_bad_dates_and_warmups_are_refused_naming_the_flag(flag: str, value: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["run", flag, value])
    assert exit_.value.code == 2 and f"argument {flag}" in capsys.readouterr().err
