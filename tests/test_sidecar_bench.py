"""The sidecar check benchmark's converter: each figure is the median of the repetitions, with the slowest beside
every figure that has a target; a missing or failed benchmark fails the conversion."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

CONVERTER = Path(__file__).resolve().parents[1] / "services" / "risk_sidecar" / "bench" / "gbench_to_result.py"
NAMES = ("BM_CheckApproved", "BM_CheckRejectedAtLastLimit", "BM_CheckRejectedDuplicate", "BM_HandleCheckFrame")


def _gbench(tmp_path: Path, runs: dict[str, list[float]], failed: str | None = None, in_us: str | None = None) -> Path:
    """A Google Benchmark JSON with ``runs`` (name -> ns of each repetition, µs for ``in_us``) and its mean
    aggregates; ``failed``: the benchmark that reports an error."""
    rows = []
    for name, times in runs.items():
        unit = "us" if name == in_us else "ns"
        rows += [{"name": name, "run_type": "iteration", "real_time": t, "time_unit": unit,
                  **({"error_occurred": True} if name == failed else {})} for t in times]
        rows.append({"name": f"{name}_mean", "run_type": "aggregate", "aggregate_name": "mean",
                     "real_time": sum(times) / len(times), "time_unit": unit})
    path = tmp_path / "check_bench.json"
    path.write_text(json.dumps({"context": {"num_cpus": 2, "mhz_per_cpu": 2596}, "benchmarks": rows}))
    return path


def _convert(tmp_path: Path, source: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(CONVERTER), str(source), str(tmp_path / "results")],
                          capture_output=True, text=True, check=False)


def test_figures_are_medians_of_the_repetitions_with_the_slowest_beside(tmp_path: Path) -> None:
    runs = {name: [90.0 + i, 300.0, 80.0 + i] for i, name in enumerate(NAMES)}
    runs["BM_HandleCheckFrame"] = [0.14, 0.15, 0.13]  # in µs: converted to ns
    done = _convert(tmp_path, _gbench(tmp_path, runs, in_us="BM_HandleCheckFrame"))
    assert done.returncode == 0, done.stderr
    figures = {f["name"]: f for f in json.loads((tmp_path / "results" / "sidecar_check.json").read_text())["figures"]}
    assert figures["check_approved_ns"]["value"] == 90.0
    assert figures["check_approved_ns"]["target"] == 100.0
    assert figures["check_approved_ns, slowest repetition"]["value"] == 300.0
    assert figures["check_approved_ns, slowest repetition"]["target"] is None
    assert figures["check_rejected_duplicate_ns"]["value"] == 92.0
    assert figures["frame_decode_check_encode_ns"]["value"] == 140.0
    assert "frame_decode_check_encode_ns, slowest repetition" not in figures  # no target: no slowest


def test_a_missing_or_failed_benchmark_fails_the_conversion(tmp_path: Path) -> None:
    runs = {name: [50.0] for name in NAMES}
    failed = _convert(tmp_path, _gbench(tmp_path, runs, failed="BM_CheckApproved"))
    assert failed.returncode == 1
    assert "check_approved_ns" in failed.stderr
    del runs["BM_HandleCheckFrame"]
    missing = _convert(tmp_path, _gbench(tmp_path, runs))
    assert missing.returncode == 1
    assert "frame_decode_check_encode_ns" in missing.stderr
    assert not (tmp_path / "results" / "sidecar_check.json").exists()
