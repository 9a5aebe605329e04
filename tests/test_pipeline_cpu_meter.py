"""The pipeline benchmark's CPU meter counts a service's worker processes, even those that ended."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "pipeline_bench", Path(__file__).resolve().parents[1] / "bench" / "pipeline_bench.py")
pipeline_bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pipeline_bench)

BURN = "import time\nend = time.process_time() + 0.4\nwhile time.process_time() < end: pass\n"
SERVICE = ("import subprocess, sys, time\n"
           f"subprocess.run([sys.executable, '-c', {BURN!r}])\n"  # a worker that burns CPU, then ends
           "time.sleep(30)\n")


@pytest.fixture
def service():
    """A process that starts a worker burning 0.4 s of CPU and waits for it, then idles."""
    proc = subprocess.Popen([sys.executable, "-c", SERVICE])
    yield proc
    proc.kill()
    proc.wait()


def test_counts_the_cpu_of_a_worker_that_ended(service):
    meter = pipeline_bench.CpuMeter([service.pid], broker=None, every_s=0.0)
    meter.sample(time.monotonic())
    seen_worker = False
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        workers = pipeline_bench._with_children(service.pid)[1:]
        seen_worker |= bool(workers)
        meter.sample(time.monotonic())
        if seen_worker and not workers:
            break
        time.sleep(0.02)
    meter.sample(time.monotonic())
    _seconds, desk, broker = meter.between()
    assert seen_worker
    assert broker == 0.0
    assert desk >= 0.3  # the worker's 0.4 s, read while it ran (the service itself only waits)
