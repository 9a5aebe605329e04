"""Fixtures of the ingest tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from quorum_common.bus.inprocess import InProcessBus
from quorum_common.bus.message import Message


class Collect:
    """A tiny publisher that keeps what it is given."""

    def __init__(self) -> None:
        self.published: list[tuple[str, str | None, dict]] = []
        self.dead: list[tuple[str, dict, str, str | None, str]] = []

    def publish(self, topic: str, record: dict, *, key: str | None = None) -> None:
        self.published.append((topic, key, record))

    def dead_letter(self, topic: str, payload: dict, reason: str, *, key: str | None = None, error: str = "") -> None:
        self.dead.append((topic, payload, reason, key, error))


def _run_on_bus(source, service: str = "ingest") -> tuple[InProcessBus, list[Message]]:
    bus = InProcessBus(trace=False)
    delivered: list[Message] = []
    bus.tap(delivered.append)
    source.attach(bus.publisher(service))
    bus.add_source(service, source.records())
    bus.run()
    return bus, delivered


@pytest.fixture
def collect() -> Collect:
    """A fresh collecting publisher."""
    return Collect()


@pytest.fixture
def run_on_bus() -> Callable[..., tuple[InProcessBus, list[Message]]]:
    """Run a source through an in-process bus (Avro round trip of every record); get the bus and deliveries."""
    return _run_on_bus
