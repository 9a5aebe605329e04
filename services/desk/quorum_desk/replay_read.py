"""Reading the recorded topics of a desk run back from Kafka, read-only.

The reader assigns partitions itself (no consumer-group subscription, no offset commits), reads
committed records only, and stops at the high watermark each partition had when reading started
(or at the offset of the wall-clock end given), so it never waits on a live desk that keeps writing.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from quorum_common.bus.lockstep import PHASE_HEADER
from quorum_common.bus.topic_codec import TopicCodec
from quorum_common.codec import CodecError


class ReplayReadError(RuntimeError):
    """The recorded topics could not be read; the message names the topic or partition."""


@dataclass(frozen=True)
class Recorded:
    """One recorded record with where and when it was written."""

    topic: str
    """Logical topic name (without the recording's prefix)."""
    key: str | None
    value: dict[str, Any]
    partition: int
    offset: int
    kafka_ts_ms: int
    """Kafka message timestamp: wall-clock time of the recording, ms since the epoch."""
    phase: int
    """The ``x-phase`` header: the producer's lockstep phase (0 when absent)."""

    @property
    def ts_event(self) -> int:
        """Event time of the record (ns)."""
        return int(self.value["ts_event"])


@dataclass
class ReadResult:
    """Records per logical topic, plus what was skipped."""

    records: dict[str, list[Recorded]]
    undecodable: dict[str, int]
    duplicates: dict[str, int]


def _partitions(consumer: Consumer, physical: str, timeout_s: float) -> list[int]:
    md = consumer.list_topics(physical, timeout=timeout_s).topics.get(physical)
    if md is None or md.error is not None:
        raise ReplayReadError(f"recorded topic {physical} cannot be read: {md.error if md else 'missing'}")
    return sorted(md.partitions)


def _bounds(consumer: Consumer, tp: TopicPartition, wall_from_ms: int | None, wall_to_ms: int | None,
            timeout_s: float) -> tuple[int, int]:
    """[first, end) offsets of one partition for the wall-clock window (the whole partition without one)."""
    low, high = consumer.get_watermark_offsets(tp, timeout=timeout_s)
    first, end = low, high
    if wall_from_ms is not None:
        found = consumer.offsets_for_times([TopicPartition(tp.topic, tp.partition, wall_from_ms)], timeout=timeout_s)[0]
        first = high if found.offset < 0 else max(low, found.offset)
    if wall_to_ms is not None:
        found = consumer.offsets_for_times([TopicPartition(tp.topic, tp.partition, wall_to_ms)], timeout=timeout_s)[0]
        end = high if found.offset < 0 else min(high, found.offset)
    return first, end


def read_recorded(client_config: dict[str, str], prefix: str, topics: list[str], *,
                  wall_from_ms: int | None = None, wall_to_ms: int | None = None,
                  timeout_s: float = 120.0, metadata_timeout_s: float = 15.0,
                  codec: TopicCodec | None = None) -> ReadResult:
    """Every committed record of ``prefix + topic`` for each logical topic, by event time, partition, offset.

    ``wall_from_ms`` / ``wall_to_ms`` (Kafka timestamps, ``[from, to)``) limit the read through
    ``offsets_for_times``. Records that cannot be decoded are counted, not returned (the live desk
    dead-lettered them); a repeated ``event_id`` in a topic (an at-least-once redelivery) is kept once.
    Any broker error ends in :class:`ReplayReadError`.
    """
    try:
        return _read(client_config, prefix, topics, wall_from_ms, wall_to_ms, timeout_s, metadata_timeout_s,
                     codec or TopicCodec())
    except KafkaException as exc:
        raise ReplayReadError(f"reading the recording under prefix {prefix!r}: {exc}") from exc


def _read(client_config: dict[str, str], prefix: str, topics: list[str], wall_from_ms: int | None,
          wall_to_ms: int | None, timeout_s: float, metadata_timeout_s: float, codec: TopicCodec) -> ReadResult:
    consumer = Consumer({**client_config, "group.id": f"quorum-replay-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest",
                         "isolation.level": "read_committed", "enable.partition.eof": True})
    out: dict[str, list[Recorded]] = {t: [] for t in topics}
    undecodable = dict.fromkeys(topics, 0)
    duplicates = dict.fromkeys(topics, 0)
    seen: dict[str, set[str]] = {t: set() for t in topics}
    logical = {prefix + t: t for t in topics}
    try:
        ends: dict[tuple[str, int], int] = {}
        assign = []
        for physical in logical:
            for p in _partitions(consumer, physical, metadata_timeout_s):
                tp = TopicPartition(physical, p)
                first, end = _bounds(consumer, tp, wall_from_ms, wall_to_ms, metadata_timeout_s)
                if first < end:
                    ends[(physical, p)] = end
                    assign.append(TopicPartition(physical, p, first))
        consumer.assign(assign)
        pending = set(ends)
        deadline = time.monotonic() + timeout_s
        while pending:
            if time.monotonic() > deadline:
                raise ReplayReadError(f"reading the recording timed out; unfinished partitions: {sorted(pending)}")
            for m in consumer.consume(1000, 0.2):
                where = (m.topic(), m.partition())
                if m.error() is not None:
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        pending.discard(where)
                        continue
                    raise ReplayReadError(f"reading {m.topic()}[{m.partition()}]: {m.error()}")
                if where not in pending or m.offset() >= ends[where]:
                    pending.discard(where)
                    continue
                if m.offset() >= ends[where] - 1:
                    pending.discard(where)
                topic = logical[m.topic()]
                try:
                    _schema, value = codec.decode(topic, m.value())
                except CodecError:
                    undecodable[topic] += 1
                    continue
                event_id = str(value.get("event_id", ""))
                if event_id in seen[topic]:
                    duplicates[topic] += 1
                    continue
                seen[topic].add(event_id)
                headers = {k: v.decode() for k, v in (m.headers() or []) if v is not None}
                try:
                    phase = int(headers.get(PHASE_HEADER, "0"))
                except ValueError:
                    phase = 0
                key = m.key().decode() if m.key() is not None else None
                out[topic].append(Recorded(topic, key, value, m.partition(), m.offset(), m.timestamp()[1], phase))
    finally:
        consumer.close()
    for records in out.values():  # partitions interleave arbitrarily: give every read the same order
        records.sort(key=lambda r: (r.ts_event, r.partition, r.offset))
    return ReadResult(out, undecodable, duplicates)
