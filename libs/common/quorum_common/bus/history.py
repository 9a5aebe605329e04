"""Reading topics from their beginning to the end they had when reading started, or to given offsets.

A consumer group resumes at its committed offsets, so a restarted service that needs its history
again (risk: its own ``control.state``, the mandate, the last snapshot; execution: its order journal
on ``exec.reports``) reads it separately with :func:`read_to_end`, without joining any group; a restarted
lockstep consumer reads its inputs up to its committed offsets to rebuild its engine
(:mod:`quorum_common.bus.rebuild`). The end of a partition is reached when the consumer's *position* passes
the end offset: in a topic written in transactions the last offset is a commit marker, never delivered as a
record.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from quorum_common.bus.deadletter import REDRIVEN_FROM_HEADER
from quorum_common.bus.kafka_admin import partitions_of, watermark_offsets
from quorum_common.bus.message import Message, headers_to_dict
from quorum_common.bus.topic_codec import TopicCodec
from quorum_common.codec import CodecError

log = logging.getLogger(__name__)


class HistoryTimeout(TimeoutError):
    """The topics could not be read to their end in time; the message names the partitions behind."""


def read_partitions(client_config: dict[str, str], ends: dict[tuple[str, int], int],
                    timeout_s: float = 30.0, starts: dict[tuple[str, int], int] | None = None) -> Iterator[Any]:
    """Every committed record of each (broker topic, partition) of ``ends`` from its beginning (or the offset
    ``starts`` gives it) up to, not including, the offset ``ends`` gives it, in partition order (confluent-kafka
    messages, errors left out). Raises
    :class:`HistoryTimeout` when nothing comes for ``timeout_s`` (the caller's time between records does not count:
    a rebuild reads lazily)."""
    consumer = Consumer({**client_config, "group.id": f"history-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False, "isolation.level": "read_committed"})
    try:
        starts = starts or {}
        todo = {tp: end for tp, end in ends.items() if end > starts.get(tp, 0)}
        consumer.assign([TopicPartition(t, p, starts.get((t, p), OFFSET_BEGINNING)) for t, p in todo])
        deadline = time.monotonic() + timeout_s
        while todo:
            if time.monotonic() > deadline:
                raise HistoryTimeout(f"could not read {sorted(todo)} to their end: nothing came for {timeout_s}s")
            batch = consumer.consume(1000, 0.2)
            for m in batch:
                if m.error() is None and m.offset() < ends[(m.topic(), m.partition())]:
                    yield m
            if batch:
                deadline = time.monotonic() + timeout_s
            for tp in consumer.position([TopicPartition(t, p) for t, p in todo]):
                if tp.offset >= todo[(tp.topic, tp.partition)]:
                    del todo[(tp.topic, tp.partition)]
    finally:
        consumer.close()


def decode_history(codec: TopicCodec, m: Any, prefix: str = "", headers: bool = False) -> Message | None:
    """The :class:`Message` of a record read by :func:`read_partitions` (``headers``: with its headers), or None
    when it cannot be decoded (skipped with a warning: the live consumer dead-letters it, and history only rebuilds
    state) or is a dead letter sent back (:mod:`quorum_common.bus.redrive`): the original, in its place in the
    history, stands for it."""
    raw_headers = m.headers()
    if raw_headers and any(k == REDRIVEN_FROM_HEADER for k, _v in raw_headers):
        return None
    topic = m.topic()[len(prefix):]
    try:
        schema, record = codec.decode(topic, m.value() or b"")
    except CodecError as exc:
        log.warning("undecodable record skipped in history", extra={"topic": topic, "error": str(exc)})
        return None
    key = m.key().decode("utf-8", "replace") if m.key() is not None else None
    return Message(topic, key, record, schema, headers_to_dict(raw_headers) if headers else {}, m.partition(),
                   m.offset())


def read_to_end(client_config: dict[str, str], codec: TopicCodec, topics: list[str], prefix: str = "",
                timeout_s: float = 30.0) -> list[Message]:
    """Every committed record of ``topics`` (logical names; missing topics are empty) up to the end they had when
    reading started, in partition order. Records that cannot be decoded are skipped (:func:`decode_history`)."""
    # read_committed: the end of a partition is where its committed records end (the last stable offset), not after
    # the records of an open transaction, which a killed producer leaves until the broker aborts it.
    probe = Consumer({**client_config, "group.id": f"history-{uuid.uuid4().hex[:8]}", "enable.auto.commit": False,
                      "isolation.level": "read_committed"})
    try:
        ends: dict[tuple[str, int], int] = {}
        for topic in topics:  # a topic that does not exist yet has no partition: nothing was ever written
            for tp in partitions_of(probe, prefix + topic):
                low, high = watermark_offsets(probe, tp)
                if high > low:
                    ends[(tp.topic, tp.partition)] = high
    finally:
        probe.close()
    return [msg for m in read_partitions(client_config, ends, timeout_s)
            if (msg := decode_history(codec, m, prefix)) is not None]
