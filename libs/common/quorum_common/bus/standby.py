"""A lockstep source standing by after its replay, so that the commands an operator sends later take effect.

In lockstep a record reaches its consumers at the next clock tick (:mod:`quorum_common.bus.lockstep`). Once a replay
has published its last tick no tick comes, so a command of the admin API (``POST /halt``) would be accepted and
audited but never handled. A source that stands by (``QUORUM_LOCKSTEP_STANDBY``; ``make up`` sets it) keeps its phase
barrier and watches ``control.commands`` from the first record its consumers may not have handled (the lowest offset
their consumer groups committed there). For the commands it sees it publishes ``HEARTBEAT`` ticks
(:func:`quorum_common.phases.heartbeat_tick`, a nanosecond apart after the last tick): the first is stamped after the
commands, so it releases them (to risk and the manager) and waits for their consumers' reports; each next one releases
what the consumers of the one before published (risk's new state to the portfolio and execution, a compiled mandate to
risk), until a tick releases nothing. The heartbeats are recorded on ``sys.clock`` like any tick, so a restarted
consumer and the incident replay put each command at the tick that released it.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from confluent_kafka.admin import AdminClient
from quorum_common.bus.kafka_admin import committed_offsets, consumer_group, watermark_offsets
from quorum_common.bus.lockstep import CLOCK_TOPIC
from quorum_common.bus.phase_barrier import Offsets, PhaseBarrier, PhaseTimeout
from quorum_common.phases import heartbeat_tick

if TYPE_CHECKING:
    from quorum_common.bus.kafka import KafkaPublisher

log = logging.getLogger(__name__)

COMMANDS_TOPIC = "control.commands"
"""What the admin API publishes outside the lockstep for the desk to handle."""
TAIL_RECORDS = 50
"""How far before the end of ``sys.clock`` :func:`last_recorded_tick` starts reading (past transaction markers)."""
MAX_HEARTBEATS = 16
"""Heartbeats one batch of commands may take before the source stops waiting for the desk to be quiet (a command, a
compiled mandate, a state and its readers take three)."""


def _reader(barrier: PhaseBarrier, more: dict[str, Any] | None = None) -> Consumer:
    """A consumer of the barrier's cluster that commits nothing, reading as the barrier does (read_committed under
    exactly-once)."""
    return Consumer({**barrier.client_config, "group.id": f"standby-{uuid.uuid4().hex[:8]}",
                     "enable.auto.commit": False,
                     "isolation.level": "read_committed" if barrier.read_committed else "read_uncommitted",
                     **(more or {})})


def start_positions(barrier: PhaseBarrier, topic: str = COMMANDS_TOPIC) -> list[TopicPartition]:
    """Per partition of ``topic``: the lowest offset its consumers (by their phase reports) have committed there, from
    which a record may not have been handled yet; the partition's beginning where one of them has committed none.
    Before any report (standby mode) every consumer that has committed there counts, and the beginning where none
    has."""
    name = barrier.topic_prefix + topic
    admin = AdminClient(barrier.client_config)
    partitions = [TopicPartition(name, p) for p in admin.list_topics(name, timeout=10).topics[name].partitions]
    start: dict[tuple[str, int], int | None] = {(tp.topic, tp.partition): None for tp in partitions}
    known = barrier.consumers_of(topic)
    for service in known or barrier.services:
        for tp, offset in committed_offsets(admin, consumer_group(barrier.topic_prefix, service), partitions).items():
            if offset < 0 and known:
                start[tp] = OFFSET_BEGINNING  # a consumer of it that has not committed there yet
            elif offset >= 0 and start[tp] != OFFSET_BEGINNING:
                start[tp] = offset if start[tp] is None else min(start[tp], offset)
    return [TopicPartition(t, p, OFFSET_BEGINNING if o is None else o) for (t, p), o in sorted(start.items())]


def last_recorded_tick(barrier: PhaseBarrier, timeout_s: float = 10.0) -> dict[str, Any] | None:
    """The last clock tick on ``sys.clock`` (a source that stands by without having published one: its heartbeats
    follow the desk's last tick), or None when there is none."""
    name = barrier.topic_prefix + CLOCK_TOPIC
    reader = _reader(barrier)
    try:
        low, high = watermark_offsets(reader, TopicPartition(name, 0), timeout_s=timeout_s)
        if high <= low:
            return None
        reader.assign([TopicPartition(name, 0, max(low, high - TAIL_RECORDS))])
        last, deadline = None, time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            m = reader.poll(0.2)
            if m is not None and m.error() is None:
                last = barrier.codec.decode(CLOCK_TOPIC, m.value())[1]
            if reader.position([TopicPartition(name, 0)])[0].offset >= high:  # past any transaction marker too
                break
        return last
    finally:
        reader.close()


def _new_records(watch: Consumer, prefix: str, poll_s: float) -> tuple[int, Offsets]:
    """The records the watch has read within ``poll_s`` (then all it has at once): their count and, per logical
    (topic, partition), the offset after the last one."""
    count, seen = 0, {}
    m = watch.poll(poll_s)
    while m is not None:
        if m.error() is None:
            count += 1
            seen[(m.topic()[len(prefix):], m.partition())] = m.offset() + 1
        m = watch.poll(0)
    return count, seen


def release(barrier: PhaseBarrier, publisher: KafkaPublisher, after: dict[str, Any]) -> int:
    """Publish heartbeats (the first after the tick ``after`` unless the publisher has published one since) until one
    releases nothing new (at most :data:`MAX_HEARTBEATS`); return how many."""
    for n in range(1, MAX_HEARTBEATS + 1):
        barrier()  # stamps the tick after everything acknowledged so far, the outside records included
        tick = heartbeat_tick(publisher.last_tick or after)
        publisher.publish(CLOCK_TOPIC, tick, key=tick["calendar"])
        barrier()  # waits for the reports of the consumers it released records to
        if not barrier.pending_release():
            return n
    log.warning("the desk still published after %d heartbeats; the next command goes on from here", MAX_HEARTBEATS)
    return MAX_HEARTBEATS


def stand_by(barrier: PhaseBarrier, publisher: KafkaPublisher, stop: threading.Event, poll_s: float = 0.5) -> int:
    """Release the commands sent after the replay with heartbeats (module doc) until ``stop``; return the heartbeats
    published. A desk that does not report in the barrier's timeout is logged, and waited for again at the next
    command."""
    after = publisher.last_tick or last_recorded_tick(barrier)  # standby mode, no replay: the desk's last tick
    if after is None:
        log.warning("no clock tick was ever published here, so there is no desk to stand by for")
        return 0
    watch = _reader(barrier, {"fetch.wait.max.ms": 100})
    watch.assign(start_positions(barrier))
    log.info("standing by: commands sent from now on are released with HEARTBEAT ticks")
    beats = 0
    try:
        while not stop.is_set():
            count, seen = _new_records(watch, barrier.topic_prefix, poll_s)
            if not seen:
                continue
            barrier.add_outside(seen)
            try:
                ticks = release(barrier, publisher, after)
            except PhaseTimeout as exc:
                log.error("the desk did not finish handling the commands; waiting again at the next one: %s", exc)
                continue
            beats += ticks
            log.info("commands released", extra={"records": count, "ticks": ticks})
    finally:
        watch.close()
    return beats
