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

The history is read as it is handed over (:class:`HistoryReplay`), not loaded first: the ticks' times are read
ahead (16 bytes a tick), then every other partition is read in step with them, each paused while it is far ahead of
the tick being handed over, and a record (a tick too) is decoded only when it is handed over. So the memory a
rebuild takes does not grow with the length of the history beyond the ticks' times. (Loading it all first took
about 330 MiB more than the running service for six years of daily bars on the portfolio's inputs, 73k records, when
measured on the code before; ``bench/rebuild_bench.py`` measures the streamed rebuild.)

Records from outside the lockstep (an operator's command: no ``x-phase`` header) were released at the first
tick the consumer handled after they arrived, which their contents cannot tell. The rebuild releases each at
the first tick whose broker timestamp is not older than its own (millisecond resolution: one that arrived in
the millisecond of a tick may land a tick later than it did).

Without lockstep a consumer handles records as they arrive, and none carries a phase: the rebuild places every one
by its broker timestamp, as it places records from outside the lockstep, which approximates the order they arrived
in. An engine that does not consume ``sys.clock`` has no ticks in its history: its records are placed by the ticks
read up to the clock's current end (:func:`clock_ends`), which are not handed to it, so its history too is handed
over as it is read (without any tick, it would all be held to the end). Without the rebuild a restarted engine would
start empty.

Limits: history that retention deleted cannot be replayed (the rebuild names the partitions in a warning); a
compacted topic replays only the records compaction kept.
"""

from __future__ import annotations

import logging
import time
import uuid
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from quorum_common.bus.history import HistoryTimeout, decode_history, read_partitions
from quorum_common.bus.kafka_admin import group_committed, partitions_of, watermark_offsets
from quorum_common.bus.lockstep import CLOCK_TOPIC, PHASE_HEADER, canonical_key, phase_of
from quorum_common.bus.message import Message
from quorum_common.bus.topic_codec import TopicCodec
from quorum_common.engine import Engine, envelope
from quorum_common.engine_state import CHECKPOINT_FORMAT, engine_name

log = logging.getLogger(__name__)

CHECKPOINT_TOPIC = "state.checkpoints"
DAY_NS = 86_400 * 10**9
CHECKPOINT_SCAN = 256
"""How many of the last records of ``state.checkpoints`` a restart looks through for its service's newest usable
checkpoint (every lockstep service writes one per ``checkpoint_every_days``: dozens of each)."""

MARGIN_TICKS = 64
"""How many ticks past a tick every partition must have been read before the records of that tick are handed over.
A record from outside the lockstep is placed by its broker timestamp, which may step back a little from one record
of a partition to the next (producers' clocks); within this margin it is still placed exactly."""


@dataclass(frozen=True, slots=True)
class HistoryRecord:
    """A record read back for a rebuild: ``raw`` as read (decoded only when handed over), the phase of its
    ``x-phase`` header (None: published outside the lockstep) and its broker timestamp (ms since the epoch)."""

    raw: Any
    phase: int | None
    timestamp_ms: int


class Sequencer:
    """Hands history records over in the order a lockstep consumer handled them, as they are read.

    ``tick_times`` are the event times of the clock ticks of the history in offset order, and ``tick_arrivals`` their
    broker timestamps. A record of phase ``p`` was released at the first tick after ``p``; one from outside the
    lockstep at the first tick whose broker timestamp is not older than its own (after every tick: handed over at the
    end). :meth:`add` places a record, :meth:`release` hands over the ticks before an index, each after the records
    it released (in canonical order, ``decode`` turning each into a :class:`Message`; one it returns None for is left
    out), and :meth:`finish` the rest. ``ticks``: the tick messages themselves, in the same order, taken one by one
    as they are handed over (an engine that consumes ``sys.clock``; None: the ticks are not handed over)."""

    def __init__(self, tick_times: Sequence[int], tick_arrivals: Iterable[int], topic_rank: dict[str, int],
                 decode: Callable[[Any], Message | None], ticks: Iterator[Message] | None = None) -> None:
        i = next((i for i in range(1, len(tick_times)) if tick_times[i] < tick_times[i - 1]), None)
        if i is not None:
            raise ValueError(f"the ticks of the history go back in event time at tick {i} ({tick_times[i - 1]} then "
                             f"{tick_times[i]}): their order cannot place the records (a source that replayed its "
                             "data again on the same topics, or ticks produced without idempotence)")
        self._times = tick_times
        # Broker timestamps of the ticks, made non-decreasing (a producer's clock may step back a millisecond).
        self._arrived = array("q", accumulate(tick_arrivals, max))
        if len(self._arrived) != len(tick_times):
            raise ValueError(f"{len(tick_times)} tick times and {len(self._arrived)} tick arrivals")
        self._rank = topic_rank
        self._ticks = ticks
        self._decode = decode
        self._slots: dict[int, list[HistoryRecord]] = {}
        self.held = 0
        """Records added and not yet handed over."""
        self.released = 0
        """Ticks handed over (or passed, without ``ticks``)."""
        self.misplaced = 0
        """Records placed at a tick already handed over (read after their margin): handed over before the next."""
        self.late = 0
        """Records placed after every tick, handed over at the end."""

    def __len__(self) -> int:
        return len(self._times)

    def add(self, record: HistoryRecord) -> int:
        """Place ``record`` at the tick that released it; return that tick's index (``len(self)``: after every tick)."""
        if record.phase is not None:
            slot = bisect_right(self._times, record.phase)  # the first tick after its phase
        else:
            slot = bisect_left(self._arrived, record.timestamp_ms)  # the first tick not older than the record
        if slot < self.released:
            self.misplaced += 1
        self._slots.setdefault(max(slot, self.released), []).append(record)
        self.held += 1
        return slot

    def release(self, upto: int) -> Iterator[Message]:
        """Hand over every tick of index below ``upto`` not handed over yet, each after the records it released."""
        while self.released < min(upto, len(self)):
            i = self.released
            self.released += 1
            yield from self._hand(self._slots.pop(i, []))
            if self._ticks is not None:
                yield next(self._ticks)

    def finish(self) -> Iterator[Message]:
        """Hand over everything left: the remaining ticks, then the records placed after every tick."""
        yield from self.release(len(self))
        rest = self._slots.pop(len(self), [])
        self.late = len(rest)
        yield from self._hand(rest)

    def _hand(self, records: list[HistoryRecord]) -> Iterator[Message]:
        self.held -= len(records)
        msgs = [m for m in map(self._decode, (r.raw for r in records)) if m is not None]
        msgs.sort(key=lambda m: canonical_key(m, self._rank))
        yield from msgs


def committed_ends(consumer: Consumer, topics: Iterable[str], prefix: str = "") -> dict[tuple[str, int], int]:
    """Where the history that the group of ``consumer`` (not subscribed yet) handled of ``topics`` (logical names)
    ends, per (broker topic, partition): its committed offset, the one to consume from next (0 where it committed
    nothing: on a first start, every one). Warns naming the partitions whose start retention has deleted."""
    parts = []
    for topic in topics:
        parts += partitions_of(consumer, prefix + topic)
    ends = {(tp.topic, tp.partition): max(tp.offset, 0) for tp in group_committed(consumer, parts)}
    lost = [f"{t}[{p}]" for (t, p), end in ends.items()
            if end > 0 and watermark_offsets(consumer, TopicPartition(t, p))[0] > 0]
    if lost:
        log.warning("the start of the history is gone (retention): the rebuilt state lacks it",
                    extra={"partitions": lost})
    return ends


def checkpoint_record(service: str, engine: Engine, tick: Message, offsets: dict[tuple[str, int], int], state: bytes,
                      logical: Callable[[str], str]) -> dict[str, Any]:
    """The ``EngineCheckpointed`` record of ``engine``'s ``state`` taken after ``tick``, which has handled every
    record before ``offsets`` (per broker topic and partition; ``logical`` names a broker topic)."""
    return {
        **envelope(tick.ts_event, "checkpoint", service), "service": service, "engine": engine_name(engine),
        "format": CHECKPOINT_FORMAT, "tick_id": tick.value["event_id"],
        "offsets": [{"topic": logical(t), "partition": p, "offset": o} for (t, p), o in sorted(offsets.items())],
        "state": state,
    }


def latest_checkpoint(client_config: dict[str, str], codec: TopicCodec, prefix: str, service: str,
                      ends: dict[tuple[str, int], int], timeout_s: float = 30.0) -> dict[str, Any] | None:
    """The newest checkpoint of ``service`` among the last :data:`CHECKPOINT_SCAN` records of ``state.checkpoints``
    that the group's commits ``ends`` (per broker topic and partition) have passed: each of its offsets at or below
    the commit of its partition (a checkpoint written after the last commit, at least once, is not); None without
    one. Its ``offsets`` are turned into broker topic names."""
    physical = prefix + CHECKPOINT_TOPIC
    probe = Consumer({**client_config, "group.id": f"history-{uuid.uuid4().hex[:8]}", "enable.auto.commit": False,
                      "isolation.level": "read_committed"})
    try:
        marks = {(tp.topic, tp.partition): watermark_offsets(probe, tp) for tp in partitions_of(probe, physical)}
    finally:
        probe.close()
    if not marks:
        return None
    starts = {tp: max(low, high - CHECKPOINT_SCAN) for tp, (low, high) in marks.items()}
    found = None
    for m in read_partitions(client_config, {tp: high for tp, (_low, high) in marks.items()}, timeout_s, starts):
        if m.key() != service.encode() or (msg := decode_history(codec, m, prefix)) is None:
            continue
        offsets = {(prefix + o["topic"], o["partition"]): o["offset"] for o in msg.value["offsets"]}
        if all(offset <= ends.get(tp, 0) for tp, offset in offsets.items()):
            found = {**msg.value, "offsets": offsets}
    return found


def clock_ends(consumer: Consumer, prefix: str = "") -> dict[tuple[str, int], int]:
    """The current end of every partition of ``sys.clock`` (as ``consumer``'s isolation level sees it), per (broker
    topic, partition); empty without that topic. The ticks before these ends place the history of a consumer that does
    not consume the clock (without lockstep), which is then handed over as it is read instead of held to the end."""
    return {(tp.topic, tp.partition): watermark_offsets(consumer, tp)[1]
            for tp in partitions_of(consumer, prefix + CLOCK_TOPIC)}


class HistoryReplay:
    """The records before ``ends`` (per broker topic and partition, from :func:`committed_ends`), handed over in the
    order a lockstep consumer handled them (:class:`Sequencer`) while they are read: the ticks' times first, then
    every other partition in step with the ticks, paused while it is more than ``2 * margin`` ticks ahead of the tick
    being handed over (the ticks themselves are read again, one by one, as they are handed over). Iterate it once;
    then :attr:`records` says how many were read and :attr:`max_held` the most that waited to be handed over at once
    (what the rebuild kept in memory besides the ticks' times).

    ``timeout_s``: how long reading may go without a record before it gives up (:class:`HistoryTimeout`, naming the
    partitions behind); the time the handler takes between records does not count. ``fetch_bytes``: the most one fetch
    of a partition brings (and a quarter of what the client queues ahead: what one read adds at most)."""

    def __init__(self, client_config: dict[str, str], codec: TopicCodec, ends: dict[tuple[str, int], int],
                 prefix: str, topic_rank: dict[str, int], with_ticks: bool, timeout_s: float = 120.0,
                 margin: int = MARGIN_TICKS, fetch_bytes: int = 1 << 20,
                 starts: dict[tuple[str, int], int] | None = None) -> None:
        self._config = {**client_config, "group.id": f"history-{uuid.uuid4().hex[:8]}", "enable.auto.commit": False,
                        "isolation.level": "read_committed", "max.partition.fetch.bytes": fetch_bytes,
                        "queued.max.messages.kbytes": max(1, fetch_bytes // 256)}
        self._codec = codec
        self._starts = starts or {}
        self._ends = {tp: end for tp, end in ends.items() if end > self._starts.get(tp, 0)}
        self._prefix = prefix
        self._rank = topic_rank
        self._with_ticks = with_ticks
        self._timeout_s = timeout_s
        self._margin = margin
        self.records = 0
        self.max_held = 0
        self._seq: Sequencer | None = None

    @property
    def ticks_done(self) -> str:
        """How far the hand-over has come: ``"<ticks handed over>/<ticks in the history>"``."""
        return f"{self._seq.released}/{len(self._seq)}" if self._seq is not None else "0/?"

    @property
    def misplaced(self) -> int:
        """Records read after their tick was handed over (see :attr:`Sequencer.misplaced`)."""
        return self._seq.misplaced if self._seq is not None else 0

    @property
    def late(self) -> int:
        """Records placed after every tick, handed over at the end (see :attr:`Sequencer.late`)."""
        return self._seq.late if self._seq is not None else 0

    def _decode(self, raw: Any) -> Message | None:
        return decode_history(self._codec, raw, self._prefix, headers=True)

    def _ticks(self) -> Iterator[tuple[Message, int]]:
        """The ticks of the history in offset order, each with its broker timestamp (those that cannot be decoded
        left out, the same ones every time)."""
        clock = {tp: end for tp, end in self._ends.items() if tp[0] == self._prefix + CLOCK_TOPIC}
        for m in read_partitions(self._config, clock, self._timeout_s, self._starts):
            if (tick := self._decode(m)) is not None:
                yield tick, m.timestamp()[1]

    def __iter__(self) -> Iterator[Message]:
        times, arrivals = array("q"), array("q")
        for tick, timestamp_ms in self._ticks():
            times.append(tick.ts_event)
            arrivals.append(timestamp_ms)
        self.records += len(times)
        again = self._ticks() if self._with_ticks else None
        try:
            yield from self._replay(Sequencer(times, arrivals, self._rank, self._decode,
                                              None if again is None else (tick for tick, _ in again)))
        finally:
            if again is not None:
                again.close()  # its consumer

    def _replay(self, seq: Sequencer) -> Iterator[Message]:
        self._seq = seq
        todo = {tp: end for tp, end in self._ends.items() if tp[0] != self._prefix + CLOCK_TOPIC}
        frontier = dict.fromkeys(todo, -1)  # per partition: the highest tick index of a record read from it so far
        paused: set[tuple[str, int]] = set()
        consumer = Consumer(self._config)
        try:
            consumer.assign([TopicPartition(t, p, self._starts.get((t, p), OFFSET_BEGINNING)) for t, p in todo])
            idle_since: float | None = None
            while todo:
                first = consumer.poll(0.2)  # what is queued, not what comes within the wait: read in small steps
                batch = [first, *consumer.consume(1000, 0)] if first is not None else []
                for m in batch:
                    tp = (m.topic(), m.partition())
                    if m.error() is not None or tp not in todo or m.offset() >= todo[tp]:
                        continue
                    headers = dict(m.headers() or ())
                    phase = phase_of(headers) if PHASE_HEADER in headers else None
                    frontier[tp] = max(frontier[tp], seq.add(HistoryRecord(m, phase, m.timestamp()[1])))
                    self.records += 1
                for tp in consumer.position([TopicPartition(t, p) for t, p in todo]):
                    if tp.offset >= todo[(tp.topic, tp.partition)]:
                        del todo[(tp.topic, tp.partition)]
                self.max_held = max(self.max_held, seq.held)
                released = seq.released
                yield from seq.release(min((frontier[tp] for tp in todo), default=len(seq)) - self._margin)
                if batch or seq.released > released:
                    idle_since = None  # (the handler's time, spent in the yield, is never idle time)
                elif idle_since is None:
                    idle_since = time.monotonic()
                elif time.monotonic() - idle_since > self._timeout_s:
                    raise HistoryTimeout(f"could not read {sorted(todo)} to their end: nothing came for "
                                         f"{self._timeout_s}s")
                self._pace(consumer, todo, frontier, paused, seq.released)
        finally:
            consumer.close()
        yield from seq.finish()

    def _pace(self, consumer: Consumer, todo: dict[tuple[str, int], int], frontier: dict[tuple[str, int], int],
              paused: set[tuple[str, int]], released: int) -> None:
        """Pause the partitions far ahead of the tick being handed over; resume those it has come close to."""
        ahead = {tp for tp in todo if frontier[tp] > released + 2 * self._margin}
        if stop := ahead - paused:
            consumer.pause([TopicPartition(t, p) for t, p in stop])
        if go := paused - ahead:
            consumer.resume([TopicPartition(t, p) for t, p in go])
        paused.clear()
        paused.update(ahead)
