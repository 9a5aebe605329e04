"""Rebuilding the order journal at start from the ``exec.reports`` topic (the journal's durable form).

The service's consumer group resumes after its committed offsets, so its own report history has to
be read separately, from the beginning and up to the end offsets seen at start, before the service
consumes anything. If that cannot be done the service refuses to start: sending without the journal
could send an order twice.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from quorum_common.bus.kafka_admin import watermark_offsets
from quorum_common.bus.topic_codec import TopicCodec
from quorum_common.codec import CodecError

from quorum_execution.config import ExecutionSettings
from quorum_execution.reports import REPORTS_TOPIC

log = logging.getLogger(__name__)


class JournalRestoreError(RuntimeError):
    """The report history could not be read to its end."""


def read_report_history(settings: ExecutionSettings, codec: TopicCodec | None = None) -> list[dict[str, Any]]:
    """Every committed ``ExecutionReported`` of the topic, partition by partition; ``[]`` when there is none."""
    codec = codec or TopicCodec()
    topic = settings.topic_prefix + REPORTS_TOPIC
    consumer = Consumer({**settings.kafka_client_config(), "group.id": f"{topic}.journal-restore",
                         "enable.auto.commit": False, "isolation.level": "read_committed"})
    try:
        meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if meta is None or meta.error is not None:
            return []  # no topic yet: nothing was ever reported
        ends = {}
        for p in sorted(meta.partitions):
            low, high = watermark_offsets(consumer, TopicPartition(topic, p))
            if high > low:
                ends[p] = high
        return _read_until(consumer, codec, topic, ends, settings.journal_restore_timeout_s)
    finally:
        consumer.close()


def _read_until(consumer: Consumer, codec: TopicCodec, topic: str, ends: dict[int, int],
                timeout_s: float) -> list[dict[str, Any]]:
    if not ends:
        return []
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
    records: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    while ends:
        if time.monotonic() > deadline:
            raise JournalRestoreError(f"could not read {topic} to its end within {timeout_s} s "
                                      f"(partitions {sorted(ends)} behind); not starting without the order journal")
        for m in consumer.consume(1000, 0.2):
            if m.error() is not None:
                continue
            try:
                records.append(codec.decode(REPORTS_TOPIC, m.value())[1])
            except CodecError as exc:
                log.warning("undecodable report skipped in journal restore", extra={"error": str(exc)})
        for tp in consumer.position([TopicPartition(topic, p) for p in ends]):
            if tp.offset >= ends[tp.partition]:
                del ends[tp.partition]
    return records
