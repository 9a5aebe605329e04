"""Benchmark result files: every figure with its unit, target and verdict, and the machine's speed beside them."""

from __future__ import annotations

import json
from pathlib import Path

from quorum_common.benchjson import Figure, reference_loop_ns, write_result


def test_a_result_file_has_every_figure_with_its_verdict_and_the_machine_speed(tmp_path: Path) -> None:
    path = write_result("demo", [Figure("latency", 4.0, "ms", 5.0, "max"), Figure("rate", 90.0, "msg/s", 100.0, "min"),
                                 Figure("count", 3.0, "records")], notes="n", results_dir=tmp_path)
    data = json.loads(path.read_text())
    assert path == tmp_path / "demo.json" and data["benchmark"] == "demo" and data["notes"] == "n"
    assert [(f["name"], f["met"]) for f in data["figures"]] == [("latency", True), ("rate", False), ("count", None)]
    assert data["machine"]["reference_loop_ns"] == reference_loop_ns() > 0
    assert data["machine"]["written_at"].endswith("+00:00")
