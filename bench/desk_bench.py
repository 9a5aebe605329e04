"""The embedded desk: events/s through every agent (optimiser time apart) and the `make run` wall time, with
the lockstep in-process bus alone beside it (its subscribers doing nothing): the ceiling the bus sets."""

from __future__ import annotations

import itertools
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from quorum_common.benchjson import Figure, write_result
from quorum_common.bus.inprocess import InProcessBus
from quorum_common.schemas import default_catalog
from quorum_common.testing.samples import sample_record
from quorum_desk.engine import run_embedded

ROOT = Path(__file__).resolve().parents[1]


BUS_SUBSCRIBERS = 6
"""Subscribers of the bus-alone figure: about as many engines as take the bars in the desk."""


def bus_alone(bar_times: int = 4000, symbols: int = 20, repeat: int = 5) -> float:
    """Events/s of the lockstep in-process bus with the Avro round trip, best of ``repeat``: a source of
    ``symbols`` bars and one clock tick per bar time, :data:`BUS_SUBSCRIBERS` subscribers that do nothing."""
    catalog = default_catalog()
    bar, tick = (sample_record(catalog.registry.get(catalog.topic(t).value_schema), seed=1, list_len=1)
                 for t in ("md.bars", "sys.clock"))

    def source():
        for t in range(bar_times):
            ts = 10**18 + t * 10**9
            for s in range(symbols):
                yield "md.bars", f"S{s}", {**bar, "ts_event": ts, "event_id": f"b{t}-{s}"}
            yield "sys.clock", None, {**tick, "ts_event": ts + 1}

    best = float("inf")
    for _ in range(repeat):
        bus, handled = InProcessBus(lockstep=True, trace=False), itertools.count()
        for i in range(BUS_SUBSCRIBERS):
            bus.subscribe(f"service{i}", ["md.bars", "sys.clock"], lambda _msg, n=handled: next(n))
        bus.add_source("ingest", source())
        started = time.perf_counter()
        events = bus.run()
        best = min(best, time.perf_counter() - started)
        if (got := next(handled)) != events * BUS_SUBSCRIBERS:
            raise RuntimeError(f"the subscribers got {got} records, not {events * BUS_SUBSCRIBERS}")
    return events / best


def checkpoint_costs(engines: dict[str, Any], repeat: int = 3) -> list[Figure]:
    """Size, write and restore time (best of ``repeat``) of each rebuildable engine's checkpoint, taken after a run:
    what a lockstep service spends on its loop's thread every ``QUORUM_CHECKPOINT_EVERY_DAYS``."""
    figures: list[Figure] = []
    for name, engine in sorted(engines.items()):
        if not getattr(engine, "rebuilds_from_history", False) or (data := engine.checkpoint()) is None:
            continue
        write = restore = float("inf")
        for _ in range(repeat):
            started = time.perf_counter()
            engine.checkpoint()
            write = min(write, time.perf_counter() - started)
            fresh = type(engine)(engine.settings, engine.publisher)
            started = time.perf_counter()
            fresh.restore(data)
            restore = min(restore, time.perf_counter() - started)
            fresh.close()
        figures += [Figure(f"{name} checkpoint after the run, size", round(len(data) / 1e6, 3), "MB", None),
                    Figure(f"{name} checkpoint after the run, write", round(write * 1e3, 1), "ms", None),
                    Figure(f"{name} checkpoint after the run, restore", round(restore * 1e3, 1), "ms", None)]
    return figures


def run() -> None:
    """Replay the default window twice: in-process (events/s) and through the CLI (wall time)."""
    desk = run_embedded(time_handlers=True)
    solver_s = desk.recorder.optimiser_s
    handlers = sorted(desk.bus.handler_s.items(), key=lambda item: -item[1])
    rate = desk.events / desk.wall_s
    rate_ex = desk.events / max(desk.wall_s - solver_s, 1e-9)
    bare = run_embedded(roundtrip=False)  # records handed over as published: the codec's share
    bare_ex = bare.events / max(bare.wall_s - bare.recorder.optimiser_s, 1e-9)
    bars = desk.bus.delivered["md.bars"]
    checkpoints = checkpoint_costs(desk.engines)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "quorum_desk.app", "run", "--run-id", "bench", "--reports",
                    str(ROOT / "reports")], check=True, capture_output=True)
    make_run = time.perf_counter() - started
    write_result("desk", [
        Figure("embedded replay through all agents", round(rate), "events/s", 100_000, "min"),
        Figure("embedded replay, optimiser time excluded", round(rate_ex), "events/s", 100_000, "min"),
        Figure("embedded replay, optimiser time excluded, no Avro round trip", round(bare_ex), "events/s", 100_000,
               "min"),
        Figure("embedded replay, optimiser time excluded, in bars", round(bars / max(desk.wall_s - solver_s, 1e-9)),
               "bars/s", None),
        Figure(f"lockstep bus alone, {BUS_SUBSCRIBERS} subscribers doing nothing, Avro round trip", round(bus_alone()),
               "events/s", None),
        Figure("optimiser time in the run", round(solver_s, 2), "s", None),
        *(Figure(f"time in the {service} handlers" + (", optimiser included" if service == "portfolio" else ""),
                 round(seconds, 2), "s", None) for service, seconds in handlers),
        Figure("time outside the handlers (data source, bus, Avro round trip, recorder)",
               round(desk.wall_s - sum(seconds for _service, seconds in handlers), 2), "s", None),
        Figure("events delivered", desk.events, "events", None),
        *checkpoints,
        Figure("`make run` wall time (default mandate, 2005-2018, report included)", round(make_run, 1), "s", None),
    ], notes="default mandate and data (20 stocks + SPX + VIX + BTC-USD, 2005-2018), lockstep in-process bus "
             "with the Avro round trip; an event is one record delivered by the bus; bars/s counts the bars alone (the "
             "brief's anchors: backtrader about 5k bars/s, NautilusTrader about 11k order-heavy); the bus alone: "
             "20 bars and a clock tick per bar time, 4000 bar times, best of 5; handler times: wall clock of each "
             "service's handlers in the first run (the regime's is almost all HMM refits); checkpoints: each "
             "rebuildable engine's after the first run, sealing left out, best of 3")


if __name__ == "__main__":
    run()
