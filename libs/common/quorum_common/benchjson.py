"""Benchmark result files: one JSON file per benchmark under ``bench/results/``.

Every figure carries its value, unit, target and whether the target was met, so a reader of
``bench/results/*.json`` never has to guess what a number means. The machine's speed varies from day to day
(the same C++ check took 92 ns one day and 123-135 ns another), so every file also records the time of a fixed
pure-Python loop measured when it was written (:func:`reference_loop_ns`): figures of two files compare only as
far as their reference loops agree.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

RESULTS_DIR = Path(os.environ.get("QUORUM_BENCH_RESULTS", Path(__file__).resolve().parents[3] / "bench" / "results"))


@dataclass(frozen=True)
class Figure:
    """One measured number with its unit and target.

    ``direction`` is ``"max"`` when the value must stay at or below the target (latencies, durations)
    and ``"min"`` when it must reach at least the target (throughputs). ``target`` may be ``None``
    for figures that are reported but have no target.
    """

    name: str
    value: float
    unit: str
    target: float | None = None
    direction: str = "max"

    @property
    def met(self) -> bool | None:
        """Whether the value meets its target, or ``None`` without a target."""
        if self.target is None:
            return None
        return self.value <= self.target if self.direction == "max" else self.value >= self.target


@functools.lru_cache(maxsize=1)
def reference_loop_ns(iterations: int = 2_000_000, repeat: int = 5) -> float:
    """Nanoseconds per iteration of a fixed pure-Python loop (an integer sum), best of ``repeat``: the machine's
    speed for interpreted code when the benchmarks ran (measured once per process)."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        total = 0
        for i in range(iterations):
            total += i
        best = min(best, time.perf_counter() - started)
    return round(best / iterations * 1e9, 2)


def write_result(benchmark: str, figures: list[Figure], notes: str = "", results_dir: Path | None = None) -> Path:
    """Write ``<results_dir>/<benchmark>.json`` with every figure and return its path."""
    out_dir = Path(results_dir or RESULTS_DIR)
    out_dir.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": benchmark,
        "machine": {"platform": platform.platform(), "python": sys.version.split()[0], "cpus": os.cpu_count(),
                    "reference_loop_ns": reference_loop_ns(),
                    "written_at": datetime.now(UTC).isoformat(timespec="seconds")},
        "figures": [{**asdict(f), "met": f.met} for f in figures],
        "notes": notes,
    }
    path = out_dir / f"{benchmark}.json"
    path.write_text(json.dumps(payload, indent=2) + "\n")
    for f in figures:
        status = "n/a" if f.met is None else ("MET" if f.met else "MISSED")
        bound = "" if f.target is None else f" (target {'<=' if f.direction == 'max' else '>='} {f.target} {f.unit})"
        print(f"[bench] {benchmark}: {f.name} = {f.value:.4g} {f.unit}{bound} {status}")
    return path
