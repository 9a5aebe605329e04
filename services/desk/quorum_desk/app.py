"""``quorum-desk``: the trading desk on bundled real data.

- ``quorum-desk run [--mandate FILE] [--start DATE] [--end DATE] [--warmup DAYS] [--resume-after-days N]``: every agent
  in this process on the in-process bus; progress on stderr; writes ``reports/<run id>/`` (HTML, PNG
  charts, metrics). ``--resume-after-days`` adds a simulated risk officer (:mod:`quorum_desk.officer`).
- ``quorum-desk up [--mandate FILE] [--start DATE] [--end DATE] [--warmup DAYS] [--no-replay] [--follow]`` / ``down``:
  the local Kafka broker and every service as its own process (the same window flags as ``run``; ``--follow``:
  :mod:`quorum_desk.follow`).
- ``quorum-desk replay ...``: re-drive a recorded window through a fresh desk and report the first
  divergence (incident analysis, what-if runs, Avro export); see :mod:`quorum_desk.replay`.
- ``quorum-desk dlq list|redrive ...``: the dead letters, and sending them back once they can be handled; see
  :mod:`quorum_desk.dead_letters`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from quorum_common.runtime.config import ConfigError, load_settings, settings_env
from quorum_common.runtime.logging import setup_logging

from quorum_desk.composition import CONSUMERS, SOURCE
from quorum_desk.config import DeskSettings
from quorum_desk.coverage import check_replay_covers_mandate
from quorum_desk.dead_letters import add_dlq_arguments, cmd_dlq
from quorum_desk.engine import run_embedded
from quorum_desk.replay import add_replay_arguments, cmd_replay
from quorum_desk.report import ReportError, bars_ended_note, build_report, no_bars_note
from quorum_desk.report_letters import FILE


def _progress(started: float) -> callable:
    def report(count: int, ts: int) -> None:
        day = datetime.fromtimestamp(ts / 1e9, UTC).strftime("%Y-%m-%d")
        rate = count / max(time.perf_counter() - started, 1e-9)
        print(f"  {day}  {count:>10,} events  {rate:>9,.0f} events/s", file=sys.stderr, flush=True)

    return report


def _positive_days(text: str) -> float:
    """A number of days above 0 (``--resume-after-days``)."""
    try:
        days = float(text)
    except ValueError:
        days = float("nan")
    if not days > 0:
        raise argparse.ArgumentTypeError(f"must be a number of days above 0, not {text!r}")
    return days


def _iso_date(text: str) -> date:
    """A calendar date ``YYYY-MM-DD`` (``--start``, ``--end``)."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a date YYYY-MM-DD, not {text!r}") from None


def _warmup_days(text: str) -> int:
    """A whole number of days, 0 or more (``--warmup``)."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"must be a whole number of days (0 or more), not {text!r}")
    return int(text)


def add_window_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags ``run`` and ``up`` share: the mandate and the replayed window (read by :func:`window_overrides`)."""
    parser.add_argument("--mandate", help="the user's mandate file (YAML or JSON); default: the packaged one")
    parser.add_argument("--start", type=_iso_date, help="first bar date (YYYY-MM-DD)")
    parser.add_argument("--end", type=_iso_date, help="last bar date (YYYY-MM-DD)")
    parser.add_argument("--warmup", type=_warmup_days, default=0, metavar="DAYS",
                        help="replay DAYS calendar days before the first date without trading, so the agents start "
                             "with history (the optimiser's window, the regime's first fit); the report starts at "
                             "the first date (default: 0)")


def window_overrides(args: argparse.Namespace) -> dict[str, dict]:
    """The services' settings the flags of :func:`add_window_arguments` change. ``--warmup DAYS`` replays that many
    calendar days before the first date (``--start``, else the replay's default start) with the portfolio proposing
    nothing and the critic tightening nothing (their ``trade_from``): the engines build their history, the report starts
    at the first date."""
    overrides: dict[str, dict] = {}
    if args.mandate:
        overrides["manager"] = {"mandate_path": Path(args.mandate)}
    ingest = {k: v for k, v in (("start", args.start), ("end", args.end)) if v}
    if args.warmup:
        start = args.start or load_settings(SOURCE.settings_cls, **ingest).start
        if start is None:
            raise ConfigError("--warmup: the replay has no first date to warm up before; give --start")
        ingest["start"] = start - timedelta(days=args.warmup)
        for spec in CONSUMERS:  # each service whose settings know where trading starts (the portfolio, the critic)
            if "trade_from" in spec.settings_cls.model_fields:
                overrides[spec.name] = {"trade_from": start}
    if ingest:
        overrides["ingest"] = ingest
    return overrides


def run_overrides(args: argparse.Namespace) -> dict[str, dict]:
    """The services' settings a ``run`` command line changes: :func:`window_overrides` and the simulated officer."""
    overrides = window_overrides(args)
    if args.resume_after_days is not None:
        overrides["officer"] = {"resume_after_days": args.resume_after_days}
    return overrides


def up_env(args: argparse.Namespace) -> dict[str, str]:
    """The environment ``up`` gives the services for the flags of :func:`add_window_arguments`, each service's
    settings checked first, and the replay's data against the mandate's universe, so a bad value is refused (naming
    it) before anything starts. The admin API gets the replayed symbols, so that ``PUT /mandate`` refuses others."""
    overrides = window_overrides(args)
    if "manager" in overrides:  # the services may start elsewhere than the user's working directory
        overrides["manager"]["mandate_path"] = overrides["manager"]["mandate_path"].resolve()
    specs = {spec.name: spec for spec in (SOURCE, *CONSUMERS)}
    for service, fields in overrides.items():
        load_settings(specs[service].settings_cls, **fields)
    tradable = check_replay_covers_mandate(overrides)
    env = settings_env({field: value for fields in overrides.values() for field, value in fields.items()})
    if tradable is not None:  # the admin API refuses a mandate naming another
        env.update(settings_env({"tradable_symbols": json.dumps(sorted(tradable))}))
    return env


def cmd_up(args: argparse.Namespace) -> int:
    """Start the local broker and every service, then (unless ``--no-replay``) the lockstep replay."""
    from quorum_desk import local
    from quorum_desk.follow import follow, log_size

    try:
        env = up_env(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    log_from = log_size()
    try:
        local.up(env=env, replay=not args.no_replay)
    except local.UpRefused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not args.follow or args.no_replay:
        return 0
    try:
        return follow(log_from=log_from)
    except KeyboardInterrupt:
        print("stopped following; the desk runs on (`make down` stops it)", file=sys.stderr)
        return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Run the embedded desk and write its report."""
    run_id = args.run_id or datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    print(f"Quorum desk, embedded run {run_id}", file=sys.stderr)
    setup_logging("desk", "ERROR")  # dead letters are summarised below instead of logged one by one
    try:
        desk = load_settings(DeskSettings, **({"reports_dir": Path(args.reports)} if args.reports else {}))
        overrides = run_overrides(args)
        check_replay_covers_mandate(overrides)
        run = run_embedded(overrides, progress=_progress(time.perf_counter()), progress_every=desk.progress_every)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = desk.reports_dir / run_id
    try:
        metrics = build_report(run.recorder, out, run_id, run.wall_s, run.events, run.recorder.optimiser_s,
                               run.bus.dead_letters)
    except ReportError as exc:
        kept = f" (its dead letters are in {out / FILE})" if run.bus.dead_letters else ""
        print(f"error: no report: {exc}{kept}", file=sys.stderr)
        return 2
    perf = metrics["performance"]
    print(f"{run.events:,} events in {run.wall_s:.1f} s ({metrics['events_per_second']:,.0f} events/s); "
          f"optimiser {run.recorder.optimiser_s:.1f} s")
    print(f"CAGR {perf['cagr']:.2%}  vol {perf['volatility']:.2%}  Sharpe {perf['sharpe']:.2f}  "
          f"max drawdown {perf['max_drawdown']:.2%} (limit {metrics['drawdown_limit']:.0%})  fees {perf['fees']:,.0f}")
    if not perf["trades"]:
        history, fit = run.engines["portfolio"].settings.min_history_bars, run.engines["regime"].settings.min_fit_bars
        print(f"no trade: the portfolio solves once a symbol has {history} sessions of returns "
              f"(QUORUM_MIN_HISTORY_BARS), and the regime fits after its first {fit} rows; start earlier, or add "
              "--warmup DAYS (e.g. --warmup 365) to replay history before the start without trading")
    if metrics["universe_without_bars"]:
        print(no_bars_note(metrics["universe_without_bars"]))
    if metrics["universe_bars_ended"]:
        print(bars_ended_note(metrics["universe_bars_ended"]))
    letters = Counter((d.topic, d.reason) for d in run.bus.dead_letters)
    if letters:
        summary = ", ".join(f"{n} {topic} ({reason})" for (topic, reason), n in letters.most_common())
        print(f"dead letters (refused input, kept with the reason in {out / FILE}): {summary}")
    print(f"report: {out / 'index.html'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(prog="quorum-desk", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="the embedded desk on bundled data, with a report")
    add_window_arguments(run)
    run.add_argument("--resume-after-days", type=_positive_days, metavar="DAYS",
                     help="a simulated risk officer reviews the desk's own de-risking DAYS event-time days later: "
                          "it resumes a drawdown lock and sets limits the critic tightened back to the mandate's "
                          "(default: none; both then hold to the end of the run)")
    run.add_argument("--reports", help="folder of the run reports (default: QUORUM_REPORTS_DIR or reports)")
    run.add_argument("--run-id", help="name of the report folder (default: UTC time)")
    up = sub.add_parser("up", help="local broker + every service as its own process, then a lockstep replay")
    add_window_arguments(up)
    up.add_argument("--no-replay", action="store_true",
                    help="start the services without a replay (ingest only stands by, so commands take effect)")
    up.add_argument("--follow", action="store_true", help="print the replay's progress until it finishes, then the "
                    "desk's state, NAV and positions (Ctrl-C stops following, not the desk)")
    restart = sub.add_parser("restart", help="stop one service `up` started and start it again (it rebuilds first)")
    restart.add_argument("service", help="alpha, regime, manager, portfolio, risk, execution or critic")
    restart.add_argument("--kill", action="store_true", help="SIGKILL instead of a graceful stop: no last commit")
    down = sub.add_parser("down", help="stop what `up` started")
    down.add_argument("--purge", action="store_true", help="also delete the broker's data")
    add_replay_arguments(sub.add_parser("replay", help="re-drive a recorded window through a fresh desk and compare"))
    add_dlq_arguments(sub.add_parser("dlq", help="list the dead letters, or send them back once they can be handled"))
    args = parser.parse_args(argv)
    if args.cmd == "run":
        return cmd_run(args)
    if args.cmd == "replay":
        return cmd_replay(args)
    if args.cmd == "dlq":
        return cmd_dlq(args)
    if args.cmd == "up":
        return cmd_up(args)
    from quorum_desk import local

    if args.cmd == "restart":
        try:
            local.restart(args.service, kill=args.kill)
        except (ValueError, RuntimeError) as exc:
            print(f"quorum-desk restart: {exc}", file=sys.stderr)
            return 2
    else:
        local.down(purge=args.purge)
    return 0


if __name__ == "__main__":
    sys.exit(main())
