"""Engine checkpoints: an engine restored from one taken mid-run, into a fresh instance, goes on exactly as the live
one would have (quorum_common.engine_state; over Kafka, test_restart_kafka.py)."""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

import pytest
from quorum_common.bus.inprocess import InProcessBus
from quorum_common.bus.lockstep import CLOCK_TOPIC
from quorum_common.bus.message import Message
from quorum_common.engine import Engine
from quorum_common.engine_state import CheckpointMismatch
from quorum_common.runtime.service import wire_inprocess
from quorum_desk.composition import CONSUMERS, SOURCE
from quorum_desk.engine import run_embedded, service_settings


def outputs_of(record: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    """The records, less the solve's wall time on the targets (the one field that differs between any two runs)."""
    return [(topic, {k: v for k, v in value.items() if k != "solve_ms"}) for topic, value in record]


def run_swapping(overrides: dict[str, dict], every: int) -> tuple[list[tuple[str, dict]], Counter]:
    """The desk in process, every rebuildable engine replaced every ``every`` clock ticks by a fresh one restored from
    its checkpoint (at the tick's delivery: every engine has handled what came before it); what was published, and
    how often each engine was replaced."""
    bus = InProcessBus(lockstep=True, trace=False)
    published: list[tuple[str, dict]] = []
    bus.tap(lambda m: published.append((m.topic, m.value)))
    live: dict[str, Engine] = {}
    settings = {spec.name: service_settings(spec, overrides) for spec in CONSUMERS}
    for spec in CONSUMERS:
        live[spec.name] = spec.engine(settings[spec.name], bus.publisher(spec.name))
        bus.subscribe(spec.name, live[spec.name].inputs, lambda m, n=spec.name: live[n].on_message(m),
                      live[spec.name].acts_on)
    replaced: Counter = Counter()
    ticks = itertools.count(1)

    def replace_engines(msg: Message) -> None:
        if msg.topic != CLOCK_TOPIC or next(ticks) % every:
            return
        for spec in CONSUMERS:
            old = live[spec.name]
            data = old.checkpoint() if old.rebuilds_from_history else None
            if data is None:
                continue
            fresh = spec.engine(settings[spec.name], bus.publisher(spec.name))
            fresh.restore(data)
            old.close()
            live[spec.name] = fresh
            replaced[spec.name] += 1

    bus.tap(replace_engines)
    wire_inprocess(bus, SOURCE, service_settings(SOURCE, overrides))
    try:
        bus.run()
    finally:
        for engine in live.values():
            engine.close()
    assert not bus.dead_letters
    return published, replaced


@pytest.mark.parametrize(("every", "workers"), [(7, False), (40, True)])
def test_engines_restored_from_checkpoints_mid_run_publish_what_the_live_ones_did(
        desk_window, every: int, workers: bool) -> None:
    # The regime fits early and often; with workers, solves start early in a worker process and refits land rows
    # later from one (their results in flight are waited for, or the checkpoint waits for a later tick).
    more = {"regime": {"min_fit_bars": 40, "refit_every": 5}}
    if workers:
        more = {"regime": {**more["regime"], "refit_lag_rows": 3, "fit_worker": "process"},
                "portfolio": {"optimiser_worker": "early"}}
    overrides = desk_window("2006-07-01", "2006-10-31", **more)
    want: list[tuple[str, dict]] = []
    run_embedded(overrides, extra_taps=[lambda m: want.append((m.topic, m.value))])
    got, replaced = run_swapping(overrides, every)
    assert set(replaced) == {"regime", "alpha", "manager", "portfolio", "critic"}, replaced
    assert min(replaced.values()) >= 3, replaced
    assert sum(t == "orders.proposed" for t, _ in want) > 20 and sum(t == "regime.state" for t, _ in want) > 20
    assert outputs_of(got) == outputs_of(want)


def test_a_checkpoint_is_restored_only_by_the_same_engine_with_the_same_settings(desk_window) -> None:
    overrides = desk_window("2006-07-01", "2006-09-30", regime={"min_fit_bars": 40, "refit_every": 5})
    engines: dict[str, Engine] = {}
    bus = InProcessBus(lockstep=True, trace=False)
    for spec in CONSUMERS:
        engines[spec.name] = wire_inprocess(bus, spec, service_settings(spec, overrides))
    wire_inprocess(bus, SOURCE, service_settings(SOURCE, overrides))
    bus.run()
    regime, alpha = engines["regime"], engines["alpha"]
    data = regime.checkpoint()
    assert data is not None
    spec = next(s for s in CONSUMERS if s.name == "regime")
    other = spec.engine(service_settings(spec, {"regime": {"refit_every": 7}}), bus.publisher("regime"))
    before = dict(vars(other))
    with pytest.raises(CheckpointMismatch, match="settings"):
        other.restore(data)
    assert vars(other).keys() == before.keys() and all(vars(other)[k] is v for k, v in before.items()), \
        "a refused checkpoint leaves the engine as it was"
    with pytest.raises(CheckpointMismatch, match=r"engine 'quorum_regime\.engine\.RegimeEngine'"):
        alpha.restore(data)
    same = spec.engine(service_settings(spec, overrides), bus.publisher("regime"))
    same.restore(data)
    assert same.fits == regime.fits > 0 and same.settings is not regime.settings
    for engine in engines.values():
        engine.close()
