"""Reading topics back in tests and benchmarks, straight from the broker."""

from __future__ import annotations

import time
import uuid
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition


def read_topic(
    client_config: dict[str, str],
    topic: str,
    *,
    expected: int | None = None,
    timeout_s: float = 30.0,
    idle_s: float = 2.0,
    isolation: str = "read_committed",
) -> list[Any]:
    """Every message of ``topic`` from the beginning, without joining a consumer group's commits.

    Stops once ``expected`` messages arrived (then waits ``idle_s`` more to catch extras), or
    after ``idle_s`` without a message, or at ``timeout_s``.
    """
    consumer = Consumer({
        **client_config,
        "group.id": f"reader-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "isolation.level": isolation,
    })
    md = consumer.list_topics(topic, timeout=10).topics[topic]
    if md.error is not None:
        consumer.close()
        raise RuntimeError(f"cannot read {topic}: {md.error}")
    consumer.assign([TopicPartition(topic, p, 0) for p in md.partitions])
    out: list[Any] = []
    deadline = time.monotonic() + timeout_s
    last = time.monotonic()
    try:
        while time.monotonic() < deadline:
            batch = consumer.consume(1000, 0.2)
            got = [m for m in batch if m.error() is None]
            if got:
                out.extend(got)
                last = time.monotonic()
            elif time.monotonic() - last > idle_s and (expected is None or len(out) >= expected):
                break
            elif expected is not None and len(out) < expected and time.monotonic() - last > max(idle_s, 10.0):
                break
    finally:
        consumer.close()
    return out


def produce_raw(client_config: dict[str, str], topic: str, items: list[tuple[str | None, bytes]]) -> None:
    """Produce raw ``(key, value)`` pairs and wait for every acknowledgement."""
    producer = Producer({**client_config, "enable.idempotence": True, "acks": "all"})
    for key, value in items:
        producer.produce(topic, value=value, key=key.encode() if key is not None else None)
    if producer.flush(30):
        raise RuntimeError(f"records to {topic} were not acknowledged")
