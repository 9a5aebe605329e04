"""The in-process transport: deterministic, single-threaded, delivering in event-time order.

Published records wait in a heap ordered by ``(ts_event, publication sequence)``; sources are
merged into it lazily, one pending record each. ``run`` delivers records one by one to every
subscribed handler. With ``roundtrip=True`` (the default) each record is encoded and decoded
through the Avro codec, so engines see exactly the types they would see over Kafka.
"""

from __future__ import annotations

import heapq
import itertools
import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import Any

from quorum_common.bus.base import Bus, Handler, Publisher
from quorum_common.bus.deadletter import REASON_DECODE, REASON_HANDLER, DeadLetter, dead_letter_payload
from quorum_common.bus.message import Message
from quorum_common.bus.topic_codec import TopicCodec
from quorum_common.codec import CodecError
from quorum_common.runtime.tracing import consume_span, inject_headers

log = logging.getLogger(__name__)

SourceItem = tuple[str, str | None, dict[str, Any]]
"""What a source yields: (topic, key, record)."""


class _InProcessPublisher:
    def __init__(self, bus: InProcessBus, service: str) -> None:
        self._bus = bus
        self._service = service

    def publish(self, topic: str, record: dict[str, Any], *, key: str | None = None) -> None:
        self._bus._enqueue(topic, key, record, inject_headers({}))

    def dead_letter(self, topic: str, payload: bytes | dict[str, Any], reason: str, *, key: str | None = None,
                    error: str = "") -> None:
        data = dead_letter_payload(self._bus.codec, topic, payload)
        letter = DeadLetter(topic, key, data, reason, error or reason, self._service)
        self._bus.dead_letters.append(letter)
        log.warning("dead letter", extra={"topic": topic, "reason": reason, "service": self._service})


class InProcessBus(Bus):
    """All services of a process on one deterministic, event-time-ordered queue."""

    def __init__(self, codec: TopicCodec | None = None, roundtrip: bool = True, trace: bool = True) -> None:
        self.codec = codec or TopicCodec()
        self.roundtrip = roundtrip
        self.trace = trace
        self._heap: list[tuple[int, int, str, str | None, Any, dict[str, str]]] = []
        self._seq = itertools.count()
        self._subs: dict[str, list[tuple[str, Handler]]] = defaultdict(list)
        self._sources: dict[int, tuple[str, Iterator[SourceItem]]] = {}
        self.dead_letters: list[DeadLetter] = []
        self.delivered: dict[str, int] = defaultdict(int)
        self.published: dict[str, int] = defaultdict(int)
        self._taps: list[Handler] = []

    def publisher(self, service: str) -> Publisher:
        """The publisher of ``service``."""
        return _InProcessPublisher(self, service)

    def subscribe(self, service: str, topics: Iterable[str], handler: Handler) -> None:
        """Deliver every record of ``topics`` to ``handler``."""
        for topic in topics:
            self.catalog_check(topic)
            self._subs[topic].append((service, handler))

    def tap(self, handler: Handler) -> None:
        """Call ``handler`` with every delivered record of every topic (recorders, reports)."""
        self._taps.append(handler)

    def add_source(self, service: str, items: Iterable[SourceItem]) -> None:
        """Merge a source's records (in non-decreasing ``ts_event``) into the queue lazily."""
        sid = next(self._seq)
        self._sources[sid] = (service, iter(items))
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
        self._enqueue(topic, key, record, {}, source=sid)

    def _enqueue(
        self, topic: str, key: str | None, record: dict[str, Any], headers: dict[str, str], source: int = -1
    ) -> None:
        payload: Any = self.codec.encode(topic, record) if self.roundtrip else record
        headers = {**headers, "x-source": str(source)} if source >= 0 else headers
        heapq.heappush(self._heap, (int(record["ts_event"]), next(self._seq), topic, key, payload, headers))
        self.published[topic] += 1

    def inject_raw(self, topic: str, key: str | None, payload: bytes, ts_event: int) -> None:
        """Queue raw bytes as if a producer had written them (tests of malformed input)."""
        heapq.heappush(self._heap, (ts_event, next(self._seq), topic, key, payload, {}))

    def run(self, max_messages: int | None = None) -> int:
        """Deliver queued records in event-time order until the queue is empty; return how many."""
        count = 0
        while self._heap and (max_messages is None or count < max_messages):
            _ts, _seq, topic, key, payload, headers = heapq.heappop(self._heap)
            source = headers.get("x-source")
            if source is not None:
                headers = {k: v for k, v in headers.items() if k != "x-source"}
                self._pull_source(int(source))
            self._deliver(topic, key, payload, headers)
            count += 1
        return count

    def _deliver(self, topic: str, key: str | None, payload: Any, headers: dict[str, str]) -> None:
        subs = self._subs.get(topic, ())
        if not subs and not self._taps:
            return
        try:
            if isinstance(payload, (bytes, bytearray)):
                schema, record = self.codec.decode(topic, payload)
            else:
                schema, record = self.codec.catalog.topic(topic).value_schema, payload
        except CodecError as exc:
            for service, _ in subs:
                self._dead_letter(topic, key, payload, REASON_DECODE, exc, service, headers)
            return
        msg = Message(topic=topic, key=key, value=record, schema=schema, headers=headers)
        self.delivered[topic] += 1
        for tap in self._taps:
            tap(msg)
        for service, handler in subs:
            try:
                if self.trace:
                    with consume_span(service, topic, headers):
                        handler(msg)
                else:
                    handler(msg)
            except Exception as exc:  # a failing handler must not stop the others
                raw = payload if isinstance(payload, bytes) else self.codec.encode(topic, record)
                self._dead_letter(topic, key, raw, REASON_HANDLER, exc, service, headers)

    def _dead_letter(
        self, topic: str, key: str | None, payload: bytes, reason: str, exc: Exception, service: str, headers
    ) -> None:
        error = f"{type(exc).__name__}: {exc}"
        letter = DeadLetter(topic, key, bytes(payload), reason, error, service, headers=headers)
        self.dead_letters.append(letter)
        log.warning("dead letter", extra={"topic": topic, "reason": reason, "error": letter.error, "service": service})
