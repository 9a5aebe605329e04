"""The embedded desk: events/s through every agent (optimiser time apart) and the `make run` wall time."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from quorum_common.benchjson import Figure, write_result
from quorum_desk.engine import run_embedded

ROOT = Path(__file__).resolve().parents[1]


def run() -> None:
    """Replay the default window twice: in-process (events/s) and through the CLI (wall time)."""
    desk = run_embedded()
    solver_s = desk.recorder.optimiser_s
    rate = desk.events / desk.wall_s
    rate_ex = desk.events / max(desk.wall_s - solver_s, 1e-9)
    bare = run_embedded(roundtrip=False)  # records handed over as published: the codec's share
    bare_ex = bare.events / max(bare.wall_s - bare.recorder.optimiser_s, 1e-9)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "quorum_desk.app", "run", "--run-id", "bench", "--reports",
                    str(ROOT / "reports")], check=True, capture_output=True)
    make_run = time.perf_counter() - started
    write_result("desk", [
        Figure("embedded replay through all agents", round(rate), "events/s", 100_000, "min"),
        Figure("embedded replay, optimiser time excluded", round(rate_ex), "events/s", 100_000, "min"),
        Figure("embedded replay, optimiser time excluded, no Avro round trip", round(bare_ex), "events/s", 100_000,
               "min"),
        Figure("optimiser time in the run", round(solver_s, 2), "s", None),
        Figure("events delivered", desk.events, "events", None),
        Figure("`make run` wall time (default mandate, 2005-2018, report included)", round(make_run, 1), "s", None),
    ], notes="default mandate and data (20 stocks + SPX + VIX + BTC-USD, 2005-2018), lockstep in-process bus "
             "with the Avro round trip; an event is one record delivered by the bus")


if __name__ == "__main__":
    run()
