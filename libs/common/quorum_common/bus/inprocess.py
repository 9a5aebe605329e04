"""The in-process transport: deterministic, single-threaded, delivering in event-time order.

Published records wait in a heap ordered by ``(ts_event, publication sequence)``; sources are
merged into it lazily, one pending record each. ``run`` delivers records one by one to every
subscribed handler. With ``roundtrip=True`` (the default) each record is encoded and decoded
through the Avro codec, so engines see exactly the types they would see over Kafka.

With ``lockstep=True`` subscribers receive records in phases cut by the clock ticks, exactly as the
Kafka transport does in lockstep mode (see :mod:`quorum_common.bus.lockstep`). A subscriber that publishes
on a tick with no record released to it, of a kind not in its ``acts_on``, stops the run with
:class:`LockstepViolation`: over Kafka the source would not have waited for those records
(:mod:`quorum_common.bus.phase_barrier`), so every embedded run checks the engines' ``acts_on``.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from quorum_common.bus.base import Bus, Handler, Publisher
from quorum_common.bus.deadletter import REASON_DECODE, REASON_HANDLER, DeadLetter, dead_letter_payload
from quorum_common.bus.lockstep import CLOCK_TOPIC, PHASE_HEADER, PhaseBuffer, canonical_key
from quorum_common.bus.message import Message
from quorum_common.bus.topic_codec import TopicCodec
from quorum_common.codec import CodecError
from quorum_common.engine import SourceItem
from quorum_common.runtime.tracing import consume_span, inject_headers

log = logging.getLogger(__name__)


class LockstepViolation(RuntimeError):
    """An engine published on a tick where lockstep says it cannot (see the module doc): a programming error."""


class _InProcessPublisher:
    def __init__(self, bus: InProcessBus, service: str) -> None:
        self._bus = bus
        self._service = service

    def publish(self, topic: str, record: dict[str, Any], *, key: str | None = None) -> None:
        bus = self._bus
        if bus._idle is not None and bus._idle[0] == self._service:
            kind = bus._idle[1]
            raise LockstepViolation(
                f"{self._service} published {topic} on a {kind} tick with no record released to it: "
                f"add {kind} to its engine's acts_on, or the source of a Kafka run would not wait for it")
        bus._enqueue(topic, key, record, inject_headers({}) if bus.trace else {}, phase=bus._phase)

    def dead_letter(self, topic: str, payload: bytes | dict[str, Any], reason: str, *, key: str | None = None,
                    error: str = "") -> None:
        data = dead_letter_payload(self._bus.codec, topic, payload)
        letter = DeadLetter(topic, key, data, reason, error or reason, self._service)
        self._bus.dead_letters.append(letter)
        log.warning("dead letter", extra={"topic": topic, "reason": reason, "service": self._service})


def _timed(handler: Handler, service: str, seconds: dict[str, float]) -> Handler:
    """``handler``, adding the wall-clock time each call takes to ``seconds[service]``."""
    def timed(msg: Message) -> None:
        started = time.perf_counter()
        try:
            handler(msg)
        finally:
            seconds[service] += time.perf_counter() - started
    return timed


@dataclass
class _Subscription:
    service: str
    handler: Handler
    wants_clock: bool
    buffer: PhaseBuffer | None
    acts_on: frozenset[str] | None = None


class InProcessBus(Bus):
    """All services of a process on one deterministic, event-time-ordered queue."""

    def __init__(self, codec: TopicCodec | None = None, roundtrip: bool = True, trace: bool = True,
                 lockstep: bool = False, time_handlers: bool = False) -> None:
        self.codec = codec or TopicCodec()
        self.handler_s: dict[str, float] | None = defaultdict(float) if time_handlers else None
        """With ``time_handlers`` (benchmarks): the wall-clock seconds spent in each service's handlers, by service.
        Without it handlers are called bare."""
        self.roundtrip = roundtrip
        self.trace = trace
        self.lockstep = lockstep
        self.topic_rank = {t.name: i for i, t in enumerate(self.codec.catalog)}
        self._heap: list[tuple[int, int, str, str | None, Any, dict[str, str], int, int]] = []
        """(ts_event, sequence, topic, key, payload, headers, source id or -1, phase)"""
        self._seq = itertools.count()
        self._subs: dict[str, list[_Subscription]] = defaultdict(list)
        self._sources: dict[int, tuple[str, Iterator[SourceItem]]] = {}
        self._source_phase: dict[int, int] = {}
        self._phase = 0
        self.dead_letters: list[DeadLetter] = []
        self.delivered: dict[str, int] = defaultdict(int)
        self.published: dict[str, int] = defaultdict(int)
        self._taps: list[Handler] = []
        self._idle: tuple[str, str] | None = None
        """Lockstep: (service, tick kind) while a service handles a tick on which it may not publish
        (see :class:`LockstepViolation`)."""

    def publisher(self, service: str) -> Publisher:
        """The publisher of ``service``."""
        return _InProcessPublisher(self, service)

    def subscribe(self, service: str, topics: Iterable[str], handler: Handler,
                  acts_on: Iterable[str] | None = None) -> None:
        """Deliver every record of ``topics`` to ``handler`` (in lockstep phases when enabled; ``acts_on``: the
        tick kinds on which it may publish with no record released to it, None: every kind)."""
        topics = list(topics)
        for topic in topics:
            self.catalog_check(topic)
        if self.handler_s is not None:
            handler = _timed(handler, service, self.handler_s)
        if not self.lockstep:
            for topic in topics:
                self._subs[topic].append(_Subscription(service, handler, True, None))
            return
        sub = _Subscription(service, handler, CLOCK_TOPIC in topics, PhaseBuffer(self.topic_rank),
                            None if acts_on is None else frozenset(acts_on))
        for topic in {*topics, CLOCK_TOPIC}:
            self._subs[topic].append(sub)

    def tap(self, handler: Handler) -> None:
        """Call ``handler`` with every delivered record of every topic (recorders, reports)."""
        self._taps.append(handler)

    def add_source(self, service: str, items: Iterable[SourceItem]) -> None:
        """Merge a source's records (in non-decreasing ``ts_event``) into the queue lazily."""
        sid = next(self._seq)
        self._sources[sid] = (service, iter(items))
        self._source_phase[sid] = 0
        self._pull_source(sid)

    def catalog_check(self, topic: str) -> None:
        """Raise a clear error when ``topic`` is not in the catalog."""
        self.codec.catalog.topic(topic)

    def _pull_source(self, sid: int) -> None:
        _service, it = self._sources[sid]
        item = next(it, None)
        if item is None:
            del self._sources[sid]
            return
        topic, key, record = item
        self._enqueue(topic, key, record, {}, source=sid, phase=self._source_phase[sid])
        if topic == CLOCK_TOPIC:
            self._source_phase[sid] = int(record["ts_event"])

    def _enqueue(self, topic: str, key: str | None, record: dict[str, Any], headers: dict[str, str],
                 source: int = -1, phase: int = 0) -> None:
        """Queue a record; ``headers`` is a fresh dict of the caller's, extended here."""
        payload: Any = self.codec.encode(topic, record) if self.roundtrip else record
        if self.lockstep:
            headers[PHASE_HEADER] = str(phase)
        heapq.heappush(self._heap, (int(record["ts_event"]), next(self._seq), topic, key, payload, headers, source,
                                    phase))
        self.published[topic] += 1

    def inject_raw(self, topic: str, key: str | None, payload: bytes, ts_event: int) -> None:
        """Queue raw bytes as if a producer had written them (tests of malformed input)."""
        heapq.heappush(self._heap, (ts_event, next(self._seq), topic, key, payload, {}, -1, 0))

    def run(self, max_messages: int | None = None, progress: Callable[[int, int], None] | None = None,
            progress_every: int = 50_000) -> int:
        """Deliver queued records in event-time order until the queue is empty; return how many.

        ``progress(count, ts_event)`` is called every ``progress_every`` records.
        """
        count = 0
        while self._heap and (max_messages is None or count < max_messages):
            ts, _seq, topic, key, payload, headers, source, phase = heapq.heappop(self._heap)
            if source >= 0:
                self._pull_source(source)
            if topic == CLOCK_TOPIC:
                self._phase = ts
            self._deliver(topic, key, payload, headers, phase)
            count += 1
            if progress is not None and count % progress_every == 0:
                progress(count, ts)
        return count

    def _deliver(self, topic: str, key: str | None, payload: Any, headers: dict[str, str], phase: int) -> None:
        subs = self._subs.get(topic, ())
        if not subs and not self._taps:
            return
        try:
            if isinstance(payload, (bytes, bytearray)):
                schema, record = self.codec.decode(topic, payload)
            else:
                schema, record = self.codec.catalog.topic(topic).value_schema, payload
        except CodecError as exc:
            for sub in subs:
                self._dead_letter(topic, key, payload, REASON_DECODE, exc, sub.service, headers)
            return
        msg = Message(topic=topic, key=key, value=record, schema=schema, headers=headers)
        self.delivered[topic] += 1
        for tap in self._taps:
            tap(msg)
        order = canonical_key(msg, self.topic_rank) if self.lockstep and subs and topic != CLOCK_TOPIC else None
        for sub in subs:
            if sub.buffer is None:
                self._invoke(sub, msg, payload)
            elif topic != CLOCK_TOPIC:
                sub.buffer.add(msg, payload, phase, order)
            else:
                released = sub.buffer.release(msg.ts_event)
                for held, held_payload in released:
                    self._invoke(sub, held, held_payload)
                if sub.wants_clock:
                    self._invoke_tick(sub, msg, payload, bool(released))

    def _invoke_tick(self, sub: _Subscription, msg: Message, payload: Any, released: bool) -> None:
        """Hand a tick to ``sub``; with no record ``released`` to it and a kind not in its ``acts_on`` it may not
        publish (:class:`LockstepViolation`)."""
        kind = msg.value["kind"]
        if released or sub.acts_on is None or kind in sub.acts_on:
            self._invoke(sub, msg, payload)
            return
        self._idle = (sub.service, kind)
        try:
            self._invoke(sub, msg, payload)
        finally:
            self._idle = None

    def _invoke(self, sub: _Subscription, msg: Message, payload: Any) -> None:
        try:
            if self.trace:
                with consume_span(sub.service, msg.topic, msg.headers):
                    sub.handler(msg)
            else:
                sub.handler(msg)
        except LockstepViolation:
            raise
        except Exception as exc:  # a failing handler must not stop the others
            raw = payload if isinstance(payload, bytes) else self.codec.encode(msg.topic, msg.value)
            self._dead_letter(msg.topic, msg.key, raw, REASON_HANDLER, exc, sub.service, msg.headers)

    def _dead_letter(
        self, topic: str, key: str | None, payload: bytes, reason: str, exc: Exception, service: str,
        headers: dict[str, str]
    ) -> None:
        error = f"{type(exc).__name__}: {exc}"
        letter = DeadLetter(topic, key, bytes(payload), reason, error, service, headers=headers)
        self.dead_letters.append(letter)
        log.warning("dead letter", extra={"topic": topic, "reason": reason, "error": letter.error, "service": service})
