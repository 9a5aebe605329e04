"""Reading topics from their beginning to the end they had when reading started.

A consumer group resumes at its committed offsets, so a restarted service that needs its history
again (risk: its own ``control.state``, the mandate, the last snapshot; execution: its order journal
on ``exec.reports``) reads it separately with :func:`read_to_end`, without joining any group. The end
of a partition is reached when the consumer's *position* passes the end offset seen at start: in a
topic written in transactions the last offset is a commit marker, never delivered as a record.
"""

from __future__ import annotations

import logging
import time
import uuid

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from quorum_common.bus.kafka_admin import watermark_offsets
from quorum_common.bus.message import Message
from quorum_common.bus.topic_codec import TopicCodec
from quorum_common.codec import CodecError

log = logging.getLogger(__name__)


class HistoryTimeout(TimeoutError):
    """The topics could not be read to their end in time; the message names the partitions behind."""


def read_to_end(client_config: dict[str, str], codec: TopicCodec, topics: list[str], prefix: str = "",
                timeout_s: float = 30.0) -> list[Message]:
    """Every committed record of ``topics`` (logical names; missing topics are empty), in partition order.

    Records that cannot be decoded are skipped with a warning: the live consumer dead-letters them,
    and history only rebuilds state.
    """
    consumer = Consumer({**client_config, "group.id": f"history-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False, "isolation.level": "read_committed"})
    try:
        ends: dict[tuple[str, int], int] = {}
        for topic in topics:
            physical = prefix + topic
            meta = consumer.list_topics(physical, timeout=10).topics.get(physical)
            if meta is None or meta.error is not None:
                continue  # no topic yet: nothing was ever written
            for p in sorted(meta.partitions):
                low, high = watermark_offsets(consumer, TopicPartition(physical, p))
                if high > low:
                    ends[(physical, p)] = high
        consumer.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t, p in ends])
        out: list[Message] = []
        deadline = time.monotonic() + timeout_s
        while ends:
            if time.monotonic() > deadline:
                raise HistoryTimeout(f"could not read {sorted(ends)} to their end within {timeout_s}s")
            for m in consumer.consume(1000, 0.2):
                if m.error() is not None:
                    continue
                topic = m.topic()[len(prefix):]
                try:
                    schema, record = codec.decode(topic, m.value() or b"")
                except CodecError as exc:
                    log.warning("undecodable record skipped in history", extra={"topic": topic, "error": str(exc)})
                    continue
                key = m.key().decode("utf-8", "replace") if m.key() is not None else None
                out.append(Message(topic, key, record, schema, {}, m.partition(), m.offset()))
            for tp in consumer.position([TopicPartition(t, p) for t, p in ends]):
                if tp.offset >= ends[(tp.topic, tp.partition)]:
                    del ends[(tp.topic, tp.partition)]
        return out
    finally:
        consumer.close()
