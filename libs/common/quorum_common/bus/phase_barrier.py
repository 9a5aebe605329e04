"""The lockstep phase barrier over Kafka: phase reports instead of polling consumer-group offsets.

Lockstep (:mod:`quorum_common.bus.lockstep`) needs every record of the phases before a clock tick
``T`` to have reached its consumers before they handle ``T``. Kafka gives no order across
partitions, so the barrier works with offsets:

1. A lockstep consumer that has handled a tick (the records released at it, then the tick) waits
   until everything it published is acknowledged, then publishes a ``PhaseCompleted`` report to
   ``sys.progress``: the tick's id and, for every partition it has published to, the offset after
   its last record. Under ``exactly_once`` a report on a phase with outputs is produced in their
   transaction (the source reads ``read_committed``), so it becomes readable exactly when they do;
   a report on a phase without outputs vouches only for committed ones and goes out at once.
2. The data source publishes the next tick only when every consumer it waits for has reported on the
   previous one, and stamps it with the header ``x-after``: the highest of those offsets and its own,
   per partition. Waiting on a report is one Kafka hop, not a poll of the broker's group offsets.
3. A consumer that receives a tick holds it until it has read every partition it is assigned up to
   the offsets of ``x-after``, then releases the phase.

Only a consumer that may publish in a phase has anything to vouch for, so the source waits for those
alone and names them in the tick's ``x-wait`` header; the others handle the tick and send no report.
A consumer can publish in a phase only when records were released to it at the tick (records of its
input topics published in the phase before: the source sees them as offsets that rose between the
last two ``x-after`` stamps) or when the tick is of a kind it acts on by itself (``acts_on``: the
manager's VOTE, the portfolio's rebalance tick). Every report carries the consumer's inputs and
``acts_on``, so the source learns each one's rule from its first report and waits for a consumer on
every tick until then (a restarted source too). The in-process bus refuses a record an engine
publishes where this rule says it cannot, so the embedded runs check every engine's ``acts_on``.
At the end of a replay the source waits until every consumer has committed past the last tick.

So each phase costs a tick hop, the consumers' work and a report hop, and nothing waits for commits. The source
waits for the acknowledgement of what it published (a flush) only where the next tick needs it: the offsets of its own
records (bars), or a tick someone reports on, which the flush sends at once. A tick that waits for nobody lingers in
the producer (``linger.ms``, at most a few milliseconds) and usually leaves with the next bar time's bars: a ``ROUTE``
and a ``DAY_END`` nobody acts on cost no broker round trip each (2007 at 1k bars/s, off the order path, two rounds of
alternating replays, seven each way: 737-929 bars/s, mean 799, against 617-781, mean 720; latency unchanged).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from confluent_kafka import OFFSET_END, Consumer, TopicPartition
from confluent_kafka.admin import AdminClient
from quorum_common.bus.kafka_admin import committed_offsets, consumer_group, watermark_offsets
from quorum_common.bus.lockstep import CLOCK_TOPIC
from quorum_common.bus.topic_codec import TopicCodec
from quorum_common.engine import envelope
from quorum_common.runtime.metrics import ServiceMetrics, labelled

if TYPE_CHECKING:
    from quorum_common.bus.kafka import KafkaPublisher

AFTER_HEADER = "x-after"
WAIT_HEADER = "x-wait"
PROGRESS_TOPIC = "sys.progress"
_NOT_RELEASED = frozenset({CLOCK_TOPIC, PROGRESS_TOPIC})
"""Topics whose records are never released to an engine at a tick: the ticks themselves and the reports."""

Offsets = dict[tuple[str, int], int]
"""(logical topic, partition) -> offset after the last record published there."""


class PhaseTimeout(TimeoutError):
    """Some consumers did not report on a tick in time; the message names them."""


def merge_offsets(into: Offsets, more: Offsets) -> None:
    """Raise every offset of ``into`` to the one of ``more`` where that is higher."""
    for tp, offset in more.items():
        if offset > into.get(tp, -1):
            into[tp] = offset


def encode_after(offsets: Offsets) -> str:
    """The ``x-after`` header value of ``offsets`` (compact JSON: ``[[topic, partition, offset], ...]``)."""
    return json.dumps([[t, p, o] for (t, p), o in sorted(offsets.items())], separators=(",", ":"))


def decode_after(value: str) -> Offsets:
    """The offsets of an ``x-after`` header; a malformed value raises ``ValueError`` naming it."""
    try:
        return {(str(t), int(p)): int(o) for t, p, o in json.loads(value)}
    except (TypeError, ValueError) as exc:
        raise ValueError(f"malformed {AFTER_HEADER} header {value[:80]!r}: {exc}") from exc


def encode_wait(services: Iterable[str]) -> str:
    """The ``x-wait`` header value naming ``services`` (comma-separated; empty: the source waits for nobody)."""
    return ",".join(services)


def waited_on(service: str, headers: dict[str, str]) -> bool:
    """Whether the source waits for ``service``'s report on a tick with ``headers`` (yes without ``x-wait``:
    a source that names nobody waits for everyone)."""
    wait = headers.get(WAIT_HEADER)
    return wait is None or service in wait.split(",")


@dataclass(frozen=True)
class ReportRule:
    """When a consumer may publish in a phase, hence when the source must wait for its report."""

    inputs: frozenset[str]
    """Logical topics it consumes (the clock aside)."""
    acts_on: frozenset[str] | None
    """Tick kinds it may publish on with no record released to it; None: every kind."""

    def waits(self, released: set[str], kind: str) -> bool:
        """Whether the consumer may publish after a tick of ``kind`` that releases records of ``released``."""
        return self.acts_on is None or kind in self.acts_on or not self.inputs.isdisjoint(released)


def released_topics(before: Offsets, after: Offsets) -> set[str]:
    """The topics with records published between two ``x-after`` stamps (released at the later tick)."""
    return {t for (t, p), o in after.items() if o > before.get((t, p), 0) and t not in _NOT_RELEASED}


def services_to_wait(services: Iterable[str], rules: dict[str, ReportRule], released: set[str], kind: str) -> list[str]:
    """Of ``services``, those a tick of ``kind`` releasing records of ``released`` must wait for: those that may
    publish after it, and those whose rule is not known yet."""
    return [s for s in services if s not in rules or rules[s].waits(released, kind)]


def phase_report(service: str, tick: dict[str, Any], offsets: Offsets, inputs: Iterable[str] = (),
                 acts_on: Iterable[str] | None = None) -> dict[str, Any]:
    """The ``PhaseCompleted`` record of ``service`` having handled ``tick`` (a ``ClockTicked`` record), with the
    rule of :class:`ReportRule` (``inputs``, ``acts_on``) by which the source knows when to wait for it."""
    return {
        **envelope(tick["ts_event"], "phase", service, tick["event_id"], correlation_id=tick["event_id"]),
        "service": service,
        "tick_id": tick["event_id"],
        "offsets": [{"topic": t, "partition": p, "next_offset": o} for (t, p), o in sorted(offsets.items())],
        "inputs": sorted(set(inputs) - _NOT_RELEASED),
        "acts_on": None if acts_on is None else sorted(set(acts_on)),
    }


def report_rule(report: dict[str, Any]) -> ReportRule:
    """The rule a phase report states (one of an earlier version, without inputs: wait on every tick)."""
    acts_on = report.get("acts_on")
    return ReportRule(frozenset(report.get("inputs") or ()), None if acts_on is None else frozenset(acts_on))


class PhaseBarrier:
    """The data source's side: called before every clock tick it publishes (see the module doc)."""

    def __init__(self, client_config: dict[str, str], publisher: KafkaPublisher, services: Iterable[str],
                 topic_prefix: str = "", timeout_s: float = 120.0, codec: TopicCodec | None = None,
                 read_committed: bool = False, metrics: ServiceMetrics | None = None) -> None:
        self.publisher = publisher
        self.client_config = client_config
        self.topic_prefix = topic_prefix
        self.services = sorted(set(services))
        if not self.services:
            raise ValueError("a phase barrier needs the lockstep consumer services (QUORUM_LOCKSTEP_GROUPS)")
        self.timeout_s = timeout_s
        self.read_committed = read_committed
        self.codec = codec or TopicCodec()
        self._after: Offsets = {}
        self._stamped: Offsets = {}
        """The offsets stamped on the last tick published."""
        self._collected: str | None = None
        """The last tick whose reports were collected."""
        self.rules: dict[str, ReportRule] = {}
        """What each consumer's reports said about when it may publish (none yet: wait for it on every tick)."""
        self.waited: list[str] = []
        """The consumers the last tick published waits for."""
        publisher.waiting = self.waiting
        metrics = metrics or ServiceMetrics("lockstep_source")  # a registry of its own when none is given
        self._phase_seconds = metrics.histogram(
            "phase_duration_seconds", "Lockstep: from a clock tick to the last phase report it waits for (the "
            "desk's time for that phase), by tick kind.", ["kind"])
        self._reports_received = metrics.counter("phase_reports_total", "Lockstep: phase reports the source waited "
                                                 "for and received, by service.", ["service"])
        self._flushed_at = 0
        """The publisher's ``records_published`` (its records other than ticks) at its last flush."""
        self._tick_started: tuple[str, float] | None = None
        """Kind and monotonic time of the last tick published, until its reports are collected."""
        self._reports = Consumer({**client_config, "group.id": f"phase-barrier-{uuid.uuid4().hex[:8]}",
                                  "enable.auto.commit": False, "fetch.wait.max.ms": 100,
                                  # exactly_once: a report is readable once the outputs it vouches for are
                                  "isolation.level": "read_committed" if read_committed else "read_uncommitted",
                                  "socket.nagle.disable": True})
        topic = topic_prefix + PROGRESS_TOPIC
        # An explicit start offset: OFFSET_END resolves lazily and could skip a report sent meanwhile.
        _low, high = watermark_offsets(self._reports, TopicPartition(topic, 0), timeout_s=30)
        self._reports.assign([TopicPartition(topic, 0, high if high >= 0 else OFFSET_END)])

    def __enter__(self) -> PhaseBarrier:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def __call__(self) -> None:
        """Wait for the reports on the last tick published (once per tick: a second call before the next tick
        only adds the source's own records), then stamp the next tick with the offsets. Flushes first unless only
        ticks that wait for nobody were published since the last flush (module doc)."""
        if self.waited or self.publisher.records_published != self._flushed_at:
            self._flush()
        merge_offsets(self._after, self.publisher.published_offsets)
        tick_id = self.publisher.last_tick_id
        if tick_id is not None and tick_id != self._collected:
            self._collect(tick_id)
            self._collected = tick_id
            if self._tick_started is not None:
                kind, started = self._tick_started
                labelled(self._phase_seconds, kind).observe(time.monotonic() - started)
                self._tick_started = None
        self.publisher.after = dict(self._after)

    def finish(self, poll_s: float = 0.02) -> None:
        """At the end of a replay: collect the reports on the last tick, then wait until every consumer has handled
        it (its consumer group committed past it), since a tick that waited for nobody has no report to say so.
        Raises :class:`PhaseTimeout` naming the consumers that had not within the timeout."""
        self._flush()
        self()
        ends = {(self.topic_prefix + t, p): o for (t, p), o in self._after.items() if t == CLOCK_TOPIC}
        partitions = [TopicPartition(t, p) for t, p in ends]
        admin = AdminClient(self.client_config)

        def behind(service: str) -> bool:
            done = committed_offsets(admin, consumer_group(self.topic_prefix, service), partitions)
            return any(done.get(tp, -1) < end for tp, end in ends.items())

        deadline = time.monotonic() + self.timeout_s
        pending = list(self.services) if ends else []
        while pending:
            pending = [s for s in pending if behind(s)]
            if pending and time.monotonic() > deadline:
                raise PhaseTimeout(f"{pending} had not handled the last tick within {self.timeout_s}s")
            if pending:
                time.sleep(poll_s)

    def add_outside(self, offsets: Offsets) -> None:
        """Offsets of records published outside the lockstep (an operator's commands, acknowledged by the broker):
        the next tick is stamped after them, so it releases them, and waits for their consumers."""
        merge_offsets(self._after, offsets)

    def pending_release(self) -> set[str]:
        """The topics with records that no tick has released yet (published since the last tick was stamped)."""
        return released_topics(self._stamped, self._after)

    def consumers_of(self, topic: str) -> list[str]:
        """The consumers whose reports name ``topic`` among their inputs."""
        return [s for s in self.services if s in self.rules and topic in self.rules[s].inputs]

    def _flush(self) -> None:
        """Wait until every record published is acknowledged (their offsets are then known)."""
        self.publisher.flush()
        self._flushed_at = self.publisher.records_published

    def waiting(self, kind: str) -> list[str]:
        """The consumers to wait for on the tick of ``kind`` about to be published (its ``x-wait``): those that may
        publish after it (:class:`ReportRule`) and those whose rule is not known yet."""
        released = released_topics(self._stamped, self._after)
        self._stamped = dict(self._after)
        self.waited = services_to_wait(self.services, self.rules, released, kind)
        self._tick_started = (kind, time.monotonic())
        return self.waited

    def _collect(self, tick_id: str) -> None:
        """Wait for the report on ``tick_id`` of every service it waits for (raises :class:`PhaseTimeout`).

        Every report read, of this tick or a late one of an earlier tick (a consumer the source did not wait
        for, which published anyway: an admin's command released to it), adds its offsets: they are
        acknowledged records, which the next tick then waits for. Every report also updates its service's rule.
        """
        got: set[str] = set()
        deadline = time.monotonic() + self.timeout_s
        while missing := [s for s in self.waited if s not in got]:
            left = deadline - time.monotonic()
            if left <= 0:
                raise PhaseTimeout(f"no phase report on tick {tick_id} within {self.timeout_s}s from {missing}")
            m = self._reports.poll(min(left, 0.1))
            if m is None or m.error() is not None:
                continue
            _schema, report = self.codec.decode(PROGRESS_TOPIC, m.value())
            service = report["service"]
            if service not in self.services:
                continue
            self.rules[service] = report_rule(report)
            merge_offsets(self._after, {(o["topic"], o["partition"]): o["next_offset"] for o in report["offsets"]})
            if report["tick_id"] == tick_id and service in self.waited and service not in got:
                got.add(service)
                labelled(self._reports_received, service).inc()

    def close(self) -> None:
        """Close the report consumer."""
        self._reports.close()
