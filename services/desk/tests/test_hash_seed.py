"""Decisions do not depend on the process: two runs under different hash seeds give the same bytes.

Python randomises ``str`` hashing per process, so iterating a ``set`` of symbols (and summing floats
in that order) would make a replay in another process diverge from the recording.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from quorum_common.paths import REPO_ROOT

SCRIPT = """
import json, sys
from datetime import date
from pathlib import Path
from quorum_desk.engine import run_embedded
out = []
topics = {"signals.decisions", "orders.proposed", "risk.decisions", "exec.fills", "portfolio.snapshots"}
def tap(m):
    if m.topic in topics:
        out.append({"topic": m.topic, **{k: v for k, v in m.value.items() if k != "check_latency_ns"}})
run_embedded({"ingest": {"start": date(2006, 7, 1), "end": date(2006, 11, 30), "symbols": tuple(sys.argv[2:])},
              "manager": {"mandate_path": Path(sys.argv[1])}}, extra_taps=[tap])
print(json.dumps(out, sort_keys=True, default=str))
"""


def run_with_seed(seed: str, mandate: Path, symbols: tuple[str, ...]) -> str:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(mandate), *symbols], env=env, capture_output=True,
                          text=True, cwd=REPO_ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_two_processes_with_different_hash_seeds_decide_identically(desk_mandate, desk_symbols) -> None:
    first = run_with_seed("1", desk_mandate, desk_symbols)
    second = run_with_seed("2", desk_mandate, desk_symbols)
    assert '"orders.proposed"' in first
    assert first == second
