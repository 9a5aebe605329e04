"""Composition of the desk: which services run, wired to one in-process bus."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from quorum_alpha.app import SPEC as ALPHA
from quorum_common.bus.inprocess import InProcessBus
from quorum_common.bus.message import Message
from quorum_common.runtime.service import wire_inprocess
from quorum_ingest.app import SPEC as INGEST

from quorum_desk.config import DeskSettings

SERVICES = (INGEST, ALPHA)


@dataclass
class DeskRun:
    """What arrived on each topic during an embedded run."""

    counts: Counter = field(default_factory=Counter)
    last: dict[str, Message] = field(default_factory=dict)
    signals: list[dict] = field(default_factory=list)

    def record(self, msg: Message) -> None:
        """Tap callback: count the record and keep the last one per topic."""
        self.counts[msg.topic] += 1
        self.last[msg.topic] = msg
        if msg.topic == "signals.raw":
            self.signals.append(msg.value)


def run_embedded(settings: DeskSettings, bus: InProcessBus | None = None) -> tuple[DeskRun, InProcessBus]:
    """Run every service of the desk over the in-process bus until the data is exhausted."""
    bus = bus or InProcessBus()
    run = DeskRun()
    bus.tap(run.record)
    for spec in SERVICES:
        wire_inprocess(bus, spec, settings)
    bus.run()
    return run, bus
