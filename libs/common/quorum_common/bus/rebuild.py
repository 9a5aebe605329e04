"""A restarted lockstep consumer rebuilds its engine from its input history before it resumes.

An engine keeps its state in memory (indicator windows, fitted models, a ledger, a price history). A
consumer group resumes at its committed offsets, so a service killed and started again would go on with an
empty engine and decide differently from one never interrupted (a portfolio without its price history
optimises nothing for months). In lockstep the records a consumer handled are exactly those before its
committed offsets: records held for a later phase, and held ticks, are committed only once handled
(:meth:`quorum_common.bus.kafka.ConsumerLoop._lockstep_offsets`). And the order it handled them in follows
from the records alone: at each tick of ``sys.clock`` (one partition, in offset order) the records of the
phases before it, in canonical order (:mod:`quorum_common.bus.lockstep`), then the tick. So at start, a
lockstep consumer whose group has committed offsets and whose engine allows it
(:attr:`quorum_common.engine.Engine.rebuilds_from_history`) reads every input partition from its beginning
up to those offsets, hands the records to its handler in that order with every output discarded (they
reached their topics when the records were first handled), and only then consumes, from exactly where the history
it replayed ends (not from the group's commits then: during a rolling update the instance it replaces may have
committed more meanwhile): its engine is where it was at that commit, and the records after it are handled again
as the first time.

Records from outside the lockstep (an operator's command: no ``x-phase`` header) were released at the first
tick the consumer handled after they arrived, which their contents cannot tell. The rebuild releases each at
the first tick whose broker timestamp is not older than its own (millisecond resolution: one that arrived in
the millisecond of a tick may land a tick later than it did).

Limits: history that retention deleted cannot be replayed (the rebuild names the partitions in a warning); a
compacted topic replays only the records compaction kept.
"""

from __future__ import annotations

import logging
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import accumulate

from confluent_kafka import Consumer, TopicPartition
from quorum_common.bus.history import decode_history, read_partitions
from quorum_common.bus.kafka_admin import group_committed, watermark_offsets
from quorum_common.bus.lockstep import CLOCK_TOPIC, PHASE_HEADER, PhaseBuffer, phase_of
from quorum_common.bus.message import Message
from quorum_common.bus.topic_codec import TopicCodec

log = logging.getLogger(__name__)

_AFTER_EVERY_TICK = 2**63 - 2
"""The phase of a record from outside the lockstep that arrived after the last tick of the history."""


@dataclass(frozen=True)
class HistoryRecord:
    """A record read back for a rebuild, with the broker timestamp it was stored with (ms since the epoch)."""

    msg: Message
    timestamp_ms: int


def replay_order(history: Iterable[HistoryRecord], topic_rank: dict[str, int],
                 with_ticks: bool = True) -> tuple[list[Message], int]:
    """The records of ``history`` in the order a lockstep consumer handled them (ticks included when
    ``with_ticks``: an engine that consumes ``sys.clock``), and how many records from outside the lockstep were
    still held after the last tick (then handed over at the end, in canonical order)."""
    records = list(history)
    ticks = sorted((r for r in records if r.msg.topic == CLOCK_TOPIC), key=lambda r: r.msg.offset)
    # Broker timestamps of the ticks, made non-decreasing (a producer's clock may step back a millisecond).
    arrived = list(accumulate((t.timestamp_ms for t in ticks), max))
    held = PhaseBuffer(topic_rank)
    for r in records:
        if r.msg.topic == CLOCK_TOPIC:
            continue
        if PHASE_HEADER in r.msg.headers:
            held.add(r.msg, phase=phase_of(r.msg.headers))
            continue
        first = bisect_left(arrived, r.timestamp_ms)  # the first tick not older than the record
        held.add(r.msg, phase=ticks[first].msg.ts_event - 1 if first < len(ticks) else _AFTER_EVERY_TICK)
    out: list[Message] = []
    for tick in ticks:
        out.extend(m for m, _ in held.release(tick.msg.ts_event))
        if with_ticks:
            out.append(tick.msg)
    late = [m for m, _ in held.release(_AFTER_EVERY_TICK + 1)]
    return out + late, len(late)



def committed_history(consumer: Consumer, client_config: dict[str, str], codec: TopicCodec, topics: list[str],
                      prefix: str = "", timeout_s: float = 600.0
                      ) -> tuple[list[HistoryRecord], dict[tuple[str, int], int]]:
    """What the group of ``consumer`` (not subscribed yet) handled of ``topics`` (logical names): every record of
    their partitions before its committed offsets (none when it has committed nothing: a first start), and where
    the history ends, per (broker topic, partition): the offset to consume from next (0 where nothing was
    committed)."""
    parts = []
    for topic in topics:
        physical = prefix + topic
        meta = consumer.list_topics(physical, timeout=10).topics.get(physical)
        if meta is not None and meta.error is None:
            parts += [TopicPartition(physical, p) for p in sorted(meta.partitions)]
    ends = {(tp.topic, tp.partition): max(tp.offset, 0) for tp in group_committed(consumer, parts)}
    lost = [f"{t}[{p}]" for (t, p), end in ends.items()
            if end > 0 and watermark_offsets(consumer, TopicPartition(t, p))[0] > 0]
    if lost:
        log.warning("the start of the history is gone (retention): the rebuilt state lacks it",
                    extra={"partitions": lost})
    history = []
    for m in read_partitions(client_config, ends, timeout_s):
        msg = decode_history(codec, m, prefix, headers=True)
        if msg is not None:
            history.append(HistoryRecord(msg, m.timestamp()[1]))
    return history, ends
