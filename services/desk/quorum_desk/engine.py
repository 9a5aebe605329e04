"""The embedded desk: every service on one lockstep in-process bus, driven by the ingest replay."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from quorum_common.bus.inprocess import InProcessBus
from quorum_common.engine import Engine, Source, SourceItem
from quorum_common.event_dates import day_ns
from quorum_common.runtime.config import load_settings
from quorum_common.runtime.metrics import ServiceMetrics
from quorum_common.runtime.service import ServiceSpec, wire_inprocess

from quorum_desk import officer
from quorum_desk.composition import CONSUMERS, SOURCE
from quorum_desk.recorder import RunRecorder


@dataclass
class EmbeddedRun:
    """Outcome of an embedded run."""

    recorder: RunRecorder
    bus: InProcessBus
    events: int
    wall_s: float
    engines: dict[str, Any] = field(default_factory=dict)


class InjectedSource(Source):
    """Extra records merged into the replay (control commands in tests and what-if runs)."""

    def __init__(self, items: list[SourceItem]) -> None:
        self.items = sorted(items, key=lambda item: item[2]["ts_event"])

    def records(self) -> Iterator[SourceItem]:
        """The items, oldest first."""
        return iter(self.items)


def service_settings(spec: ServiceSpec, overrides: dict[str, dict[str, Any]]) -> Any:
    """A service's settings from the environment plus the run's overrides for it."""
    return load_settings(spec.settings_cls, **overrides.get(spec.name, {}))


def run_embedded(
    overrides: dict[str, dict[str, Any]] | None = None,
    inject: list[SourceItem] | None = None,
    progress: Callable[[int, int], None] | None = None,
    extra_taps: list[Callable] | None = None,
    progress_every: int = 100_000,
    roundtrip: bool = True,
    instrument: bool = False,
    time_handlers: bool = False,
) -> EmbeddedRun:
    """Run the whole desk in this process until the replay is exhausted.

    ``overrides`` maps a service name to settings fields (e.g. ``{"ingest": {"end": ...}}``); settings for
    ``officer`` (e.g. ``{"officer": {"resume_after_days": 30}}``) add a simulated risk officer
    (:mod:`quorum_desk.officer`), which no other run mode has;
    ``inject`` adds records (e.g. a risk officer's RESUME command) at their event times.
    ``roundtrip`` (the default) passes every delivered record through the Avro codec, so engines see
    exactly what they would see over Kafka; without it records are handed over as published.
    ``instrument`` registers every service's own metrics on its engine, as a service process does
    (``ServiceSpec.instrument``): those hooks must not change what an engine decides. ``time_handlers`` (benchmarks)
    sums the wall-clock time of each service's handlers in ``bus.handler_s``.
    """
    overrides = overrides or {}
    bus = InProcessBus(lockstep=True, trace=False, roundtrip=roundtrip, time_handlers=time_handlers)
    recorder = RunRecorder()
    bus.tap(recorder.record)
    for tap in extra_taps or []:
        bus.tap(tap)
    engines = {spec.name: wire_inprocess(bus, spec, service_settings(spec, overrides)) for spec in CONSUMERS}
    if (trade_from := engines["portfolio"].settings.trade_from) is not None:
        recorder.report_from = day_ns(trade_from)  # the report leaves the warm-up out
    for spec in CONSUMERS if instrument else ():
        if spec.instrument is not None:
            spec.instrument(engines[spec.name], ServiceMetrics(spec.name))
    if officer.SPEC.name in overrides:  # a backtest's simulated risk officer (quorum_desk.officer)
        engines[officer.SPEC.name] = wire_inprocess(bus, officer.SPEC, service_settings(officer.SPEC, overrides))
    engines[SOURCE.name] = wire_inprocess(bus, SOURCE, service_settings(SOURCE, overrides))
    if inject:
        bus.add_source("injected", InjectedSource(inject).records())
    started = time.perf_counter()
    try:
        events = bus.run(progress=progress, progress_every=progress_every)
    finally:
        for engine in engines.values():
            if isinstance(engine, Engine):
                engine.close()
    return EmbeddedRun(recorder, bus, events, time.perf_counter() - started, engines)
