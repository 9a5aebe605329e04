"""The shape of every service's domain logic.

An :class:`Engine` is pure and synchronous: it receives decoded messages, reads time only from its
:class:`~quorum_common.runtime.clock.EventClock`, and emits records through an injected
:class:`~quorum_common.bus.base.Publisher`. It never knows which transport runs it.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any, ClassVar

from quorum_common.bus.base import Publisher
from quorum_common.bus.message import Message
from quorum_common.runtime.clock import EventClock

_EVENT_NS = uuid.UUID("6f1d8a52-7c1e-4c55-9a3e-0b8f5f1b2c01")

SourceItem = tuple[str, str | None, dict[str, Any]]
"""What a source yields: (topic, key, record), in non-decreasing ``ts_event``."""


def event_id(*parts: object) -> str:
    """A deterministic event id derived from ``parts`` (UUIDv5), so replays reproduce ids."""
    return str(uuid.uuid5(_EVENT_NS, "|".join(str(p) for p in parts)))


def envelope(ts_event: int, *id_parts: object, correlation_id: str | None = None) -> dict[str, Any]:
    """The four envelope fields of every record, stamped with event time only."""
    eid = event_id(*id_parts, ts_event)
    return {"event_id": eid, "ts_event": ts_event, "ts_init": ts_event, "correlation_id": correlation_id or eid}


class Engine(ABC):
    """Domain logic of a service that consumes topics."""

    inputs: ClassVar[tuple[str, ...]] = ()
    """Logical topics the engine consumes."""

    def __init__(self, publisher: Publisher, clock: EventClock | None = None) -> None:
        self.publisher = publisher
        self.clock = clock or EventClock()

    def on_message(self, msg: Message) -> None:
        """Advance the event clock to the message, then handle it."""
        self.clock.observe(msg.ts_event)
        self.handle(msg)

    @abstractmethod
    def handle(self, msg: Message) -> None:
        """React to one message."""


class Source(ABC):
    """Domain logic of a service that produces records from outside the bus (data replay, feeds)."""

    @abstractmethod
    def records(self) -> Iterator[SourceItem]:
        """The records to publish, in non-decreasing event time."""
