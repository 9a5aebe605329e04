"""The shape of every service's domain logic.

An :class:`Engine` is pure and synchronous: it receives decoded messages, reads time only from its
:class:`~quorum_common.runtime.clock.EventClock`, and emits records through an injected
:class:`~quorum_common.bus.base.Publisher`. It never knows which transport runs it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from hashlib import blake2b
from typing import Any

from quorum_common.bus.base import Publisher
from quorum_common.bus.message import Message
from quorum_common.engine_state import dump_state, load_state
from quorum_common.runtime.clock import EventClock

_EVENT_KEY = b"quorum.v1.event"

SourceItem = tuple[str, str | None, dict[str, Any]]
"""What a source yields: (topic, key, record), in non-decreasing ``ts_event``."""


def event_id(*parts: object) -> str:
    """A deterministic event id derived from ``parts``, so replays reproduce ids.

    A 128-bit BLAKE2b digest of the parts, written in the 8-4-4-4-12 form of a UUID (several times
    cheaper than ``uuid.uuid5``, which matters on the hot path of every engine).
    """
    h = blake2b("|".join(map(str, parts)).encode(), digest_size=16, key=_EVENT_KEY).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def envelope(ts_event: int, *id_parts: object, correlation_id: str | None = None) -> dict[str, Any]:
    """The four envelope fields of every record, stamped with event time only."""
    eid = event_id(*id_parts, ts_event)
    return {"event_id": eid, "ts_event": ts_event, "ts_init": ts_event, "correlation_id": correlation_id or eid}


class Engine(ABC):
    """Domain logic of a service that consumes topics."""

    inputs: tuple[str, ...] = ()
    """Logical topics the engine consumes (a class default; an engine may set its own per instance)."""
    acts_on: tuple[str, ...] | None = None
    """Lockstep: the ``sys.clock`` tick kinds on which the engine may publish when no record was released to it
    in that phase (the manager's VOTE); None: any kind. Only engines that consume ``sys.clock`` are handed ticks.
    The source of a Kafka run waits for an engine's phase report only where it may publish
    (:mod:`quorum_common.bus.phase_barrier`), and the in-process bus refuses a record published elsewhere."""
    rebuilds_from_history: bool = False
    """Whether a restarted consumer may rebuild the engine by handing it again every record it had handled,
    its outputs discarded (:mod:`quorum_common.bus.rebuild`): true for an engine whose handling has no effect but on
    its own state and its outputs. An engine that acts outside Kafka (a venue, the risk sidecar) or restores its
    state in its own way leaves it false."""
    transient: frozenset[str] = frozenset({"settings"})
    """Attributes a checkpoint leaves out (:mod:`quorum_common.engine_state`): the live instance keeps its own
    (settings, worker pools, hooks set by instrumentation). The publisher is always left out."""
    state_version: int = 1
    """The shape of the engine's checkpointed state: raise it with any change that a state checkpointed before could
    not be restored into (a checkpoint of another version is refused, and the engine rebuilds from its history)."""

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

    def checkpoint(self) -> bytes | None:
        """The engine's state as bytes, for :meth:`restore` after a restart (a lockstep service's checkpoints); None
        when it cannot be taken now (work in flight in a worker: the caller tries again later). Taking it changes
        nothing the engine decides."""
        return dump_state(self, self.transient)

    def restore(self, data: bytes) -> None:
        """Go on from the state of :meth:`checkpoint` (taken by the same engine class with the same settings, else
        :class:`~quorum_common.engine_state.CheckpointMismatch` and the engine is unchanged)."""
        load_state(self, data)

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the engine holds outside its state (e.g. a worker process); called when its
        service stops. Default: nothing."""


class Source(ABC):
    """Domain logic of a service that produces records from outside the bus (data replay, feeds)."""

    @abstractmethod
    def records(self) -> Iterator[SourceItem]:
        """The records to publish, in non-decreasing event time."""

    def attach(self, publisher: Publisher) -> None:  # noqa: B027 - optional hook
        """Called by the runtime with the service's publisher before ``records()``, so a source can send
        refused input to ``dlq.<topic>`` through ``publisher.dead_letter``. Default: nothing."""

    def stop(self) -> None:  # noqa: B027 - optional hook
        """Called by the runtime when the service must stop (a live feed ends its polling loop)."""
