"""``quorum-desk``: run the desk embedded on bundled real data and print what arrived."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime

from quorum_common.runtime.config import ConfigError, load_settings

from quorum_desk.config import DeskSettings
from quorum_desk.engine import run_embedded


def _fmt_ts(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%d")


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(prog="quorum-desk", description=__doc__)
    parser.add_argument("--datasets", nargs="+", help="bundled data sets to replay (default: GOOG BTCUSD)")
    args = parser.parse_args(argv)
    overrides = {"datasets": tuple(args.datasets)} if args.datasets else {}
    try:
        settings = load_settings(DeskSettings, **overrides)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    run, bus = run_embedded(settings)
    elapsed = time.perf_counter() - started
    print(f"Embedded run of {', '.join(settings.datasets)} over the in-process bus ({elapsed:.2f} s)")
    for topic, n in sorted(run.counts.items()):
        print(f"  {topic:<14} {n:>7} records")
    print(f"  dead letters   {len(bus.dead_letters):>7}")
    latest: dict[str, dict] = {}
    for sig in run.signals:
        latest[sig["symbol"]] = sig
    for symbol, sig in sorted(latest.items()):
        print(f"  last signal {symbol:<8} {_fmt_ts(sig['ts_event'])} score {sig['score']:+.3f} "
              f"confidence {sig['confidence']:.2f} ({sig['reason']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
