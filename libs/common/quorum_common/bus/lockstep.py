"""Lockstep delivery: the same order of messages for every engine on every transport.

Over Kafka, records of different partitions and topics arrive in no fixed order, so an engine fed
"as they come" could decide differently from the in-process run. In lockstep mode, the clock ticks
of ``sys.clock`` (one partition, published by the data source) cut time into phases:

- every published record carries the header ``x-phase``: the ``ts_event`` of the last clock tick its
  producer had handled (a source: had published) when it published the record;
- a subscriber buffers every record except clock ticks; when a tick with time ``T`` arrives it first
  releases the buffered records whose phase is ``< T`` in the canonical order
  ``(ts_event, topic rank in the catalog, key, event_id)``, then delivers the tick itself (when the
  engine subscribed to ``sys.clock``).

Each hop through a service therefore takes exactly one tick, whatever the timing, and every engine
sees the same sequence on the in-process bus and on Kafka — provided that on Kafka a consumer
handles a tick only once it has read every record of the phases before it (the source waits for every
consumer's report on the previous tick and stamps the tick with the offsets to read:
:mod:`quorum_common.bus.phase_barrier`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from quorum_common.bus.message import Message

PHASE_HEADER = "x-phase"
CLOCK_TOPIC = "sys.clock"


def canonical_key(msg: Message, topic_rank: dict[str, int]) -> tuple:
    """Sort key of a released record: event time, pipeline position of its topic, key, event id."""
    return (msg.ts_event, topic_rank.get(msg.topic, len(topic_rank)), msg.key or "", str(msg.value.get("event_id", "")))


@dataclass
class PhaseBuffer:
    """Records waiting for the clock tick that releases them."""

    topic_rank: dict[str, int]
    _items: list[tuple[int, tuple, Message, Any]] = field(default_factory=list)

    def add(self, msg: Message, context: Any = None, phase: int | None = None, key: tuple | None = None) -> None:
        """Hold ``msg`` (with any transport ``context``, e.g. its raw bytes) until its phase closes.

        ``phase`` (default: read from the ``x-phase`` header) and ``key`` (default: its :func:`canonical_key`)
        let a transport that already knows them, or hands one record to several buffers, skip working them out.
        """
        if phase is None:
            phase = phase_of(msg.headers)
        if key is None:
            key = canonical_key(msg, self.topic_rank)
        self._items.append((phase, key, msg, context))

    def release(self, tick_ts: int) -> list[tuple[Message, Any]]:
        """Remove and return the records of phases before ``tick_ts``, in canonical order."""
        ready = [item for item in self._items if item[0] < tick_ts]
        if not ready:
            return []
        self._items = [item for item in self._items if item[0] >= tick_ts]
        ready.sort(key=itemgetter(1))  # the canonical key
        return [(m, c) for _p, _k, m, c in ready]

    def first_offsets(self) -> dict[tuple[str, int], int]:
        """Per (topic, partition): the offset of the earliest record still held (what may not be committed yet)."""
        first: dict[tuple[str, int], int] = {}
        for _p, _k, m, _c in self._items:
            tp = (m.topic, m.partition)
            if m.offset < first.get(tp, m.offset + 1):
                first[tp] = m.offset
        return first

    def __len__(self) -> int:
        return len(self._items)


def phase_of(headers: dict[str, str]) -> int:
    """The phase a record was published in (0 when it carries none)."""
    try:
        return int(headers.get(PHASE_HEADER, "0"))
    except ValueError:
        return 0
