"""Reading compacted topics from the beginning at start, so a restarted service resumes its state.

A consumer group resumes at its committed offsets, which skips the history of a compacted topic that
the service needs again after a restart (its own ``control.state``, the mandate, the last snapshot).
:func:`read_compacted` reads such topics to their current end without joining any group.
"""

from __future__ import annotations

import time
import uuid

from confluent_kafka import Consumer, TopicPartition
from quorum_common.bus.kafka_admin import watermark_offsets
from quorum_common.bus.message import Message
from quorum_common.bus.topic_codec import TopicCodec
from quorum_common.codec import CodecError


def read_compacted(client_config: dict[str, str], codec: TopicCodec, topics: list[str], prefix: str = "",
                   timeout_s: float = 30.0) -> list[Message]:
    """Every committed record of ``topics`` (logical names), from the start up to each partition's end."""
    consumer = Consumer({**client_config, "group.id": f"restore-{uuid.uuid4().hex[:8]}", "enable.auto.commit": False,
                         "isolation.level": "read_committed"})
    try:
        ends: dict[tuple[str, int], int] = {}
        for topic in topics:
            physical = prefix + topic
            md = consumer.list_topics(physical, timeout=10).topics[physical]
            if md.error is not None:
                raise RuntimeError(f"cannot restore from {physical}: {md.error}")
            for p in md.partitions:
                low, high = watermark_offsets(consumer, TopicPartition(physical, p))
                if high > low:
                    ends[(physical, p)] = high
        consumer.assign([TopicPartition(t, p, 0) for t, p in ends])
        out: list[Message] = []
        deadline = time.monotonic() + timeout_s
        while ends and time.monotonic() < deadline:
            for m in consumer.consume(500, 0.2):
                if m.error() is not None:
                    continue
                topic = m.topic()[len(prefix):]
                try:
                    schema, record = codec.decode(topic, m.value() or b"")
                except CodecError:
                    continue  # the live consumer dead-letters it; history is only for state
                key = m.key().decode("utf-8", "replace") if m.key() is not None else None
                out.append(Message(topic, key, record, schema, {}, m.partition(), m.offset()))
            # The position, not the last record's offset: a transaction's commit marker ends the log.
            for tp in list(ends):
                if consumer.position([TopicPartition(*tp)])[0].offset >= ends[tp]:
                    del ends[tp]
        if ends:
            raise TimeoutError(f"restore did not reach the end of {sorted(ends)} within {timeout_s}s")
        return out
    finally:
        consumer.close()
