#!/usr/bin/env python3
"""Converts Google Benchmark JSON (check_bench) into bench/results/sidecar_check.json.

Usage: gbench_to_result.py CHECK_BENCH_JSON [RESULTS_DIR]

Each figure is the median of the benchmark's repetitions; a figure with a target also gets the slowest.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "libs" / "common"))
from quorum_common.benchjson import Figure, write_result  # noqa: E402

TARGET_NS = 100.0
# Google Benchmark name -> (figure name, target in ns or None)
FIGURES = {
    "BM_CheckApproved": ("check_approved_ns", TARGET_NS),
    "BM_CheckRejectedAtLastLimit": ("check_rejected_last_limit_ns", TARGET_NS),
    "BM_CheckRejectedDuplicate": ("check_rejected_duplicate_ns", TARGET_NS),
    "BM_HandleCheckFrame": ("frame_decode_check_encode_ns", None),
}
SCALE = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}


def main(argv: list[str]) -> int:
    """Convert ``argv[1]`` (Google Benchmark JSON) into ``sidecar_check.json`` under ``argv[2]`` (default
    bench/results); 1 when a benchmark is missing or failed."""
    data = json.loads(Path(argv[1]).read_text())
    runs: dict[str, list[float]] = {}  # benchmark -> ns of each repetition
    for b in data["benchmarks"]:
        if b.get("run_type") == "aggregate" or b.get("error_occurred") or b["name"] not in FIGURES:
            continue
        runs.setdefault(b["name"], []).append(float(b["real_time"]) * SCALE[b.get("time_unit", "ns")])
    missing = sorted(FIGURES[name][0] for name in set(FIGURES) - set(runs))
    if missing:
        print(f"gbench_to_result: missing or failed benchmarks: {missing}", file=sys.stderr)
        return 1
    figures: list[Figure] = []
    for name, (figure, target) in FIGURES.items():
        figures.append(Figure(figure, round(statistics.median(runs[name]), 2), "ns", target, "max"))
        if target is not None:
            figures.append(Figure(f"{figure}, slowest repetition", round(max(runs[name]), 2), "ns", None, "max"))
    repetitions = max(len(r) for r in runs.values())
    ctx = data.get("context", {})
    notes = (
        f"Median of {repetitions} repetitions (the slowest beside each figure with a target). "
        "In-process RiskEngine::CheckOrder with the real CLOCK_MONOTONIC clock, 128 marked symbols, "
        "2^16-id duplicate memory. check_approved includes recording the in-flight order and the id "
        "(the full approve path); check_rejected_last_limit evaluates every limit and is rejected by "
        "the last one (sector cap); frame_* adds decoding, reply encoding and metrics. "
        f"host: {ctx.get('num_cpus')} cpus @ {ctx.get('mhz_per_cpu')} MHz, "
        f"library_build_type={ctx.get('library_build_type')} (Debian's libbenchmark build; our code is -O3)."
    )
    write_result("sidecar_check", figures, notes=notes, results_dir=Path(argv[2]) if len(argv) > 2 else None)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
