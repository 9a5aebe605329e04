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
sys.modules["pipeline_bench"] = pipeline_bench  # its dataclasses look their module up
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


def test_counts_the_cpu_of_a_worker_that_ended_for_its_service(service):
    idle = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])  # another service, doing nothing
    try:
        meter = pipeline_bench.CpuMeter({"portfolio": service.pid, "risk": idle.pid}, broker=None, every_s=0.0)
        _sample_until_the_worker_ended(meter, service.pid)
    finally:
        idle.kill()
        idle.wait()
    _seconds, desk, broker = meter.between()
    assert broker == 0.0
    assert desk >= 0.3  # the worker's 0.4 s, read while it ran (the service itself only waits)
    by_service = meter.by_service()
    assert by_service.keys() == {"portfolio", "risk"}
    assert by_service["portfolio"] >= 0.3 and by_service["risk"] < 0.1  # the worker counts for its own service


def _sample_until_the_worker_ended(meter, pid: int) -> None:
    """Read ``meter`` until the process ``pid`` has started a worker and the worker has ended."""
    meter.sample(time.monotonic())
    seen_worker = False
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        workers = pipeline_bench._with_children(pid)[1:]
        seen_worker |= bool(workers)
        meter.sample(time.monotonic())
        if seen_worker and not workers:
            break
        time.sleep(0.02)
    meter.sample(time.monotonic())
    assert seen_worker


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


def _produce(kafka_config, prefix, records):
    """Produce (topic, value, ts_event header or None) records under ``prefix``."""
    from confluent_kafka import Producer

    producer = Producer(kafka_config)
    for topic, value, stamp in records:
        headers = [("ts_event", str(stamp).encode())] if stamp is not None else None
        producer.produce(prefix + topic, value=value, headers=headers)
    producer.flush(10)


def _watch(prefix, since, meter):
    from quorum_common.schemas import default_catalog

    watcher = pipeline_bench._watcher(prefix, ["md.bars", "sys.progress"], default_catalog())
    try:
        return pipeline_bench._watch(watcher, prefix, since, meter)
    finally:
        watcher.close()


def test_the_watcher_keeps_records_from_the_measured_window_with_their_times(kafka_topics, kafka_config, monkeypatch):
    """A real broker: the watcher keeps records stamped from ``since`` on and those without a stamp (phase reports,
    decoded afterwards), undecoded, each with its producer timestamp and an arrival no earlier than it; the CPU
    meter starts at the first stamped record of the window, not at a report of the warm-up."""
    monkeypatch.setattr(pipeline_bench, "IDLE_END_S", 1.0)
    warm_up = kafka_topics("md.bars", "sys.progress")
    _produce(kafka_config, warm_up, [("md.bars", b"early", 99), ("sys.progress", b"report", None)])
    meter = pipeline_bench.CpuMeter({}, broker=None, every_s=0.0)
    assert [value for _t, value, *_ in _watch(warm_up, 100, meter)] == [b"report"]
    assert meter.first is None

    prefix = kafka_topics("md.bars", "sys.progress")
    _produce(kafka_config, prefix, [("md.bars", b"early", 99), ("md.bars", b"bar", 100),
                                    ("sys.progress", b"report", None), ("md.bars", b"later", 250)])
    seen = _watch(prefix, 100, meter)
    kept = sorted((topic, value, ts_event) for topic, value, _produced, _arrival, ts_event in seen)
    assert kept == [("md.bars", b"bar", 100), ("md.bars", b"later", 250), ("sys.progress", b"report", None)]
    assert all(arrival >= produced - 0.002 for _t, _v, produced, arrival, _ts in seen)  # 1 ms timestamps
    assert meter.first is not None


def _replay(latencies, digest="d", **overrides):
    fields = dict(latencies_ms=latencies, produced_ms=[ms - 1.0 for ms in latencies], order_bar_times=2, bars=100,
                  bars_seconds=0.5, bar_times=5, reports=20,
                  cpu_seconds=1.0, desk_cpu_s=0.2, broker_cpu_s=0.1, service_cpu_s={"alpha": 0.15, "risk": 0.05},
                  stages_ms={"bar -> BAR_CLOSE tick": [4.0, 6.0]}, digest=digest)
    return pipeline_bench.Replay(**{**fields, **overrides})


def test_the_figures_of_several_replays_pool_their_orders_and_give_each_p99_beside():
    quiet = _replay([10.0] * 99 + [20.0])
    noisy = _replay([12.0] * 99 + [40.0], bars=300, bars_seconds=1.5, service_cpu_s={"alpha": 0.05, "critic": 0.15})
    by_name = {f.name: f for f in pipeline_bench.pooled_figures("1000 bars/s", [quiet, noisy], 25.0)}
    pooled = "1000 bars/s, 2 replays pooled"
    p99 = by_name[f"bar -> order latency p99 at {pooled}"]
    assert p99.target == 25.0
    assert p99.value == round(pipeline_bench._quantiles([*quiet.latencies_ms, *noisy.latencies_ms])[98], 2)
    assert by_name["bar -> order latency p99 at 1000 bars/s, replay 1"].value == round(quiet.p99_ms, 2)
    assert by_name["bar -> order latency p99 at 1000 bars/s, replay 2"].value == round(noisy.p99_ms, 2)
    assert by_name["bar -> order latency p99 at 1000 bars/s, replay 2"].target is None
    assert by_name[f"bar -> order produced, p99 at {pooled}"].value == round(p99.value - 1.0, 2)
    assert by_name[f"bar -> order produced, p99 at {pooled}"].target is None
    assert by_name[f"orders measured at {pooled}"].value == 200
    assert by_name[f"bars/s end to end (asked {pooled})"].value == 200  # 400 bars in 2 s
    assert by_name[f"CPU per bar time, desk processes at {pooled}"].value == 40.0  # 0.4 s over 10 bar times
    assert by_name[f"CPU per bar time, alpha at {pooled}"].value == 20.0  # 0.2 s over 10 bar times
    assert by_name[f"CPU per bar time, risk at {pooled}"].value == 5.0  # in one replay only
    assert by_name[f"CPU per bar time, critic at {pooled}"].value == 15.0
    assert by_name[f"bar -> BAR_CLOSE tick, slowest at {pooled}"].value == 6.0


def test_the_figures_of_one_replay_name_no_pool():
    names = [f.name for f in pipeline_bench.pooled_figures("1000 bars/s", [_replay([10.0, 11.0, 30.0])], None)]
    assert "bar -> order latency p99 at 1000 bars/s" in names
    assert not any(", replay " in n or "pooled" in n for n in names)
