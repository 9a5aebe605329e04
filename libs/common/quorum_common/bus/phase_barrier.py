"""The lockstep phase barrier over Kafka: phase reports instead of polling consumer-group offsets.

Lockstep (:mod:`quorum_common.bus.lockstep`) needs every record of the phases before a clock tick
``T`` to have reached its consumers before they handle ``T``. Kafka gives no order across
partitions, so the barrier works with offsets:

1. A lockstep consumer that has handled a tick (the records released at it, then the tick) waits
   until everything it published is acknowledged, then publishes a ``PhaseCompleted`` report to
   ``sys.progress``: the tick's id and, for every partition it has published to, the offset after
   its last record. Under ``exactly_once`` a report on a phase with outputs is produced in their
   transaction (the source reads ``read_committed``), so it becomes readable exactly when they do;
   a report on a phase without outputs vouches only for committed ones and goes out at once.
2. The data source publishes the next tick only when every consumer has reported on the previous
   one, and stamps it with the header ``x-after``: the highest of those offsets and its own, per
   partition. Waiting on a report is one Kafka hop, not a poll of the broker's group offsets.
3. A consumer that receives a tick holds it until it has read every partition it is assigned up to
   the offsets of ``x-after``, then releases the phase.

So each phase costs a tick hop, the consumers' work and a report hop, and nothing waits for commits.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from confluent_kafka import OFFSET_END, Consumer, TopicPartition
from quorum_common.bus.kafka_admin import watermark_offsets
from quorum_common.bus.topic_codec import TopicCodec
from quorum_common.engine import envelope

if TYPE_CHECKING:
    from quorum_common.bus.kafka import KafkaPublisher

AFTER_HEADER = "x-after"
PROGRESS_TOPIC = "sys.progress"

Offsets = dict[tuple[str, int], int]
"""(logical topic, partition) -> offset after the last record published there."""


class PhaseTimeout(TimeoutError):
    """Some consumers did not report on a tick in time; the message names them."""


def merge_offsets(into: Offsets, more: Offsets) -> None:
    """Raise every offset of ``into`` to the one of ``more`` where that is higher."""
    for tp, offset in more.items():
        if offset > into.get(tp, -1):
            into[tp] = offset


def encode_after(offsets: Offsets) -> str:
    """The ``x-after`` header value of ``offsets`` (compact JSON: ``[[topic, partition, offset], ...]``)."""
    return json.dumps([[t, p, o] for (t, p), o in sorted(offsets.items())], separators=(",", ":"))


def decode_after(value: str) -> Offsets:
    """The offsets of an ``x-after`` header; a malformed value raises ``ValueError`` naming it."""
    try:
        return {(str(t), int(p)): int(o) for t, p, o in json.loads(value)}
    except (TypeError, ValueError) as exc:
        raise ValueError(f"malformed {AFTER_HEADER} header {value[:80]!r}: {exc}") from exc


def phase_report(service: str, tick: dict[str, Any], offsets: Offsets) -> dict[str, Any]:
    """The ``PhaseCompleted`` record of ``service`` having handled ``tick`` (a ``ClockTicked`` record)."""
    return {
        **envelope(tick["ts_event"], "phase", service, tick["event_id"], correlation_id=tick["event_id"]),
        "service": service,
        "tick_id": tick["event_id"],
        "offsets": [{"topic": t, "partition": p, "next_offset": o} for (t, p), o in sorted(offsets.items())],
    }


class PhaseBarrier:
    """The data source's side: called before every clock tick it publishes (see the module doc)."""

    def __init__(self, client_config: dict[str, str], publisher: KafkaPublisher, services: Iterable[str],
                 topic_prefix: str = "", timeout_s: float = 120.0, codec: TopicCodec | None = None,
                 read_committed: bool = False) -> None:
        self.publisher = publisher
        self.services = sorted(set(services))
        if not self.services:
            raise ValueError("a phase barrier needs the lockstep consumer services (QUORUM_LOCKSTEP_GROUPS)")
        self.timeout_s = timeout_s
        self.codec = codec or TopicCodec()
        self._after: Offsets = {}
        self._collected: str | None = None
        """The last tick whose reports were collected."""
        self._reports = Consumer({**client_config, "group.id": f"phase-barrier-{uuid.uuid4().hex[:8]}",
                                  "enable.auto.commit": False, "fetch.wait.max.ms": 100,
                                  # exactly_once: a report is readable once the outputs it vouches for are
                                  "isolation.level": "read_committed" if read_committed else "read_uncommitted",
                                  "socket.nagle.disable": True})
        topic = topic_prefix + PROGRESS_TOPIC
        # An explicit start offset: OFFSET_END resolves lazily and could skip a report sent meanwhile.
        _low, high = watermark_offsets(self._reports, TopicPartition(topic, 0), timeout_s=30)
        self._reports.assign([TopicPartition(topic, 0, high if high >= 0 else OFFSET_END)])

    def __enter__(self) -> PhaseBarrier:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def __call__(self) -> None:
        """Wait for every report on the last tick published (once per tick: a second call before the
        next tick only adds the source's own records), then stamp the next tick with the offsets."""
        self.publisher.flush()
        merge_offsets(self._after, self.publisher.published_offsets)
        tick_id = self.publisher.last_tick_id
        if tick_id is not None and tick_id != self._collected:
            for offsets in self._collect(tick_id):
                merge_offsets(self._after, offsets)
            self._collected = tick_id
        self.publisher.after = dict(self._after)

    def _collect(self, tick_id: str) -> list[Offsets]:
        """The offsets reported by every service on ``tick_id`` (raises :class:`PhaseTimeout`)."""
        got: dict[str, Offsets] = {}
        deadline = time.monotonic() + self.timeout_s
        while len(got) < len(self.services):
            left = deadline - time.monotonic()
            if left <= 0:
                missing = [s for s in self.services if s not in got]
                raise PhaseTimeout(f"no phase report on tick {tick_id} within {self.timeout_s}s from {missing}")
            m = self._reports.poll(min(left, 0.1))
            if m is None or m.error() is not None:
                continue
            _schema, report = self.codec.decode(PROGRESS_TOPIC, m.value())
            if report["tick_id"] == tick_id and report["service"] in self.services:
                got[report["service"]] = {(o["topic"], o["partition"]): o["next_offset"] for o in report["offsets"]}
        return list(got.values())

    def close(self) -> None:
        """Close the report consumer."""
        self._reports.close()
