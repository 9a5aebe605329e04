"""Reading topics back in tests and benchmarks, straight from the broker."""

from __future__ import annotations

import time
import uuid
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition


def read_topics(
    client_config: dict[str, str],
    topics: list[str],
    *,
    expected: int | None = None,
    timeout_s: float = 30.0,
    idle_s: float = 2.0,
    isolation: str = "read_committed",
) -> dict[str, list[Any]]:
    """Every message of ``topics`` from the beginning, without joining a consumer group's commits.

    Stops once ``expected`` messages arrived in all and nothing came for ``idle_s`` (to catch
    extras), or after ``idle_s`` without a message when ``expected`` is not given, or at
    ``timeout_s``.
    """
    consumer = Consumer({
        **client_config,
        "group.id": f"reader-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "isolation.level": isolation,
    })
    parts = []
    for topic in topics:
        md = consumer.list_topics(topic, timeout=10).topics[topic]
        if md.error is not None:
            consumer.close()
            raise RuntimeError(f"cannot read {topic}: {md.error}")
        parts += [TopicPartition(topic, p, 0) for p in md.partitions]
    consumer.assign(parts)
    out: dict[str, list[Any]] = {t: [] for t in topics}
    count = 0
    deadline = time.monotonic() + timeout_s
    last = time.monotonic()
    try:
        while time.monotonic() < deadline:
            got = [m for m in consumer.consume(1000, 0.1) if m.error() is None]
            for m in got:
                out[m.topic()].append(m)
            count += len(got)
            now = time.monotonic()
            if got:
                last = now
            elif now - last > idle_s and (expected is None or count >= expected):
                break
    finally:
        consumer.close()
    return out


def read_topic(client_config: dict[str, str], topic: str, **kwargs: Any) -> list[Any]:
    """Every message of one topic (see :func:`read_topics`)."""
    return read_topics(client_config, [topic], **kwargs)[topic]


def produce_raw(client_config: dict[str, str], topic: str, items: list[tuple[str | None, bytes]]) -> None:
    """Produce raw ``(key, value)`` pairs and wait for every acknowledgement."""
    producer = Producer({**client_config, "enable.idempotence": True, "acks": "all"})
    for key, value in items:
        producer.produce(topic, value=value, key=key.encode() if key is not None else None)
    if producer.flush(30):
        raise RuntimeError(f"records to {topic} were not acknowledged")
