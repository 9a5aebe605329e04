"""Waiting until a set of consumer groups has consumed and committed everything (lockstep sources).

A group is caught up when, for every partition of its topics, its committed offset equals the log
end offset. Committed offsets are read *before* end offsets: a consumer commits only after its
outputs were acknowledged, so any output of a record counted as consumed is already in the end
offsets read afterwards. Lockstep runs use ``at_least_once`` delivery: transaction markers would
leave the end offset one past the last committed record.
"""

from __future__ import annotations

import time

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec


class QuiescenceTimeout(TimeoutError):
    """The consumer groups did not catch up in time; the message names the laggards."""


class Quiescence:
    """Lag of consumer groups over the topics they consume."""

    def __init__(self, client_config: dict[str, str], groups: dict[str, list[str]], timeout_s: float = 10.0) -> None:
        """``groups`` maps a consumer group id to the (physical) topics it consumes."""
        self.admin = AdminClient(client_config)
        self.groups = groups
        self.timeout_s = timeout_s
        topics = sorted({t for ts in groups.values() for t in ts})
        md = self.admin.list_topics(timeout=timeout_s)
        missing = [t for t in topics if t not in md.topics]
        if missing:
            raise ValueError(f"topics do not exist: {missing}")
        self.partitions = {t: sorted(md.topics[t].partitions) for t in topics}

    def lags(self) -> dict[str, int]:
        """Records not yet committed, per group."""
        ask = self.admin.list_consumer_group_offsets
        futures = {g: ask([ConsumerGroupTopicPartitions(g)], request_timeout=self.timeout_s)[g] for g in self.groups}
        committed: dict[str, dict[tuple[str, int], int]] = {}
        for g, fut in futures.items():
            res = fut.result()
            committed[g] = {(tp.topic, tp.partition): tp.offset for tp in res.topic_partitions or []}
        wanted = {TopicPartition(t, p): OffsetSpec.latest() for t, ps in self.partitions.items() for p in ps}
        ends = {(tp.topic, tp.partition): f.result().offset
                for tp, f in self.admin.list_offsets(wanted, request_timeout=self.timeout_s).items()}
        lags = {}
        for g, topics in self.groups.items():
            lag = 0
            for t in topics:
                for p in self.partitions[t]:
                    end = ends[(t, p)]
                    lag += max(0, end - max(0, committed[g].get((t, p), 0)))
            lags[g] = lag
        return lags

    def wait(self, poll_s: float = 0.002) -> float:
        """Block until every group's lag is zero; return the seconds waited."""
        start = time.monotonic()
        while True:
            try:
                lags = self.lags()
            except KafkaException as exc:  # e.g. a partition still electing its leader after creation
                if not exc.args[0].retriable() or time.monotonic() - start > self.timeout_s:
                    raise
                time.sleep(0.05)
                continue
            if not any(lags.values()):
                return time.monotonic() - start
            if time.monotonic() - start > self.timeout_s:
                behind = {g: n for g, n in lags.items() if n}
                raise QuiescenceTimeout(f"consumer groups still behind after {self.timeout_s}s: {behind}")
            time.sleep(poll_s)
