"""The pipeline benchmark's measurements: its CPU meter counts a service's worker processes, even those that ended;
its stage times split a bar time's path to its orders into phases."""

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


def test_stage_times_split_each_bar_time_with_orders_into_its_phases():
    last_bar = {100: 10.000, 200: 20.000, 300: 30.000}
    ticks = {100: {"BAR_CLOSE": 10.004, "VOTE": 10.010, "REBALANCE": 10.013, "DAY_END": 10.030},
             200: {"BAR_CLOSE": 20.002, "VOTE": 20.003},  # its REBALANCE tick was not seen: left out
             300: {"BAR_CLOSE": 30.001, "VOTE": 30.002, "REBALANCE": 30.003}}  # no orders: left out
    orders = [(100, 10.020), (100, 10.016), (200, 20.009)]
    times = pipeline_bench.stage_times(last_bar, ticks, orders)
    assert times.keys() == {name for name, *_ in pipeline_bench.STAGES}
    got = {name: [round(ms, 6) for ms in values] for name, values in times.items()}
    assert got == {"bar -> BAR_CLOSE tick": [4.0], "BAR_CLOSE -> VOTE tick": [6.0], "VOTE -> REBALANCE tick": [3.0],
                   "REBALANCE tick -> first order": [3.0]}
