"""The Kafka transport (confluent-kafka).

- Producers are idempotent with ``acks=all``.
- A service's consumer group commits offsets manually, only after the records were handled and
  their outputs delivered (``at_least_once``: when the consumer has caught up, at most every
  ``commit_interval_ms``, every ``commit_every`` records while it is busy,
  and at a graceful stop), or inside the same transaction as the outputs
  (``exactly_once``: transactional producer, ``read_committed`` consumer, offsets sent to the
  transaction; a batch that produced nothing opens no transaction, its offsets ride with the next
  one or are committed alone once the consumer has caught up).
- A record that fails to decode, or whose handler raises, goes to ``dlq.<topic>`` with the reason
  in headers, and the loop goes on with the next record. A handler's outputs are buffered and only
  produced when the handler returns, so a failed record leaves no half of its outputs behind.
- W3C trace context travels in headers; each handled record gets a consumer span.
- ``stop()`` ends the loop after the current batch, which is committed; then the consumer closes
  and the producer is flushed.
- ``lockstep=True`` delivers in clock-tick phases, as the in-process bus does
  (:mod:`quorum_common.bus.lockstep`); every record is tagged with its publisher's phase. A tick is
  held until the consumer has read up to the offsets it carries, and a handled tick is reported to
  the source when the tick names the consumer in ``x-wait`` (:mod:`quorum_common.bus.phase_barrier`).
  A record held for a later phase (and a held tick) is not committed before it is handled: a consumer
  stopped or crashed mid-phase leaves it to the next one. Under ``exactly_once`` the phase report is
  part of the transaction of the tick's outputs (when it had any), so the source sees it exactly when
  they become readable.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Literal

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from quorum_common.bus.base import Bus, Handler
from quorum_common.bus.deadletter import REASON_DECODE, REASON_HANDLER, DeadLetter, dead_letter_payload, meant_for
from quorum_common.bus.kafka_admin import consumer_group, group_committed
from quorum_common.bus.lockstep import CLOCK_TOPIC, PHASE_HEADER, PhaseBuffer
from quorum_common.bus.message import Message, headers_to_dict
from quorum_common.bus.phase_barrier import (
    AFTER_HEADER,
    PROGRESS_TOPIC,
    WAIT_HEADER,
    Offsets,
    PhaseBarrier,
    decode_after,
    encode_after,
    encode_wait,
    phase_report,
    waited_on,
)
from quorum_common.bus.rebuild import (
    CHECKPOINT_TOPIC,
    DAY_NS,
    HistoryReplay,
    checkpoint_record,
    clock_ends,
    committed_ends,
    latest_checkpoint,
)
from quorum_common.bus.topic_codec import TopicCodec
from quorum_common.codec import CodecError
from quorum_common.engine_state import seal, unseal
from quorum_common.runtime.metrics import RebuildGauges, ServiceMetrics, labelled
from quorum_common.runtime.tracing import consume_span, inject_headers

if TYPE_CHECKING:
    from quorum_common.engine import Engine

log = logging.getLogger(__name__)

Delivery = Literal["at_least_once", "exactly_once"]
PHASE_LINGER_MS = 5
"""The least ``linger.ms`` of a lockstep publisher (see :meth:`KafkaPublisher._linger_ms`): with 0, a lockstep
replay at 1k bars/s reached 420-470 bars/s and a median bar -> order time of 29-33 ms on the 2-core machine;
with 5, 480-535 bars/s and 25-28 ms (full-2007 replays through ``bench/pipeline_bench.measure``, solve lag 8)."""
REBUILD_PROGRESS_S = 10.0
"""How often a long rebuild logs how far it has come."""
_Out = tuple[str, str | None, bytes, list[tuple[str, bytes]]]


def poll_wait_s(until_due_s: float, longest_s: float) -> float:
    """The wait to give ``Consumer.poll`` for something due in ``until_due_s``: at most ``longest_s``, and rounded up
    to whole milliseconds. The client truncates its timeout to milliseconds, so the last fraction of one would
    otherwise come back at once, again and again: a loop spinning until the commit is due (every consumer did,
    for up to a millisecond of each commit interval: about 30,000 empty polls in a one-minute replay)."""
    if until_due_s <= 0:
        return 0.0
    return min(longest_s, math.ceil(until_due_s * 1000) / 1000)


class DeliveryFailed(RuntimeError):
    """The broker did not acknowledge a produced record; offsets were not committed."""


def _fatal(err: KafkaError) -> bool:
    """Whether the client is dead after ``err``. A consumer's fatal error (e.g. fenced off by a successor with the
    same ``group.instance.id``) comes as a record whose error has the code ``_FATAL`` and its flag unset."""
    return err.fatal() or err.code() == KafkaError._FATAL


class KafkaPublisher:
    """Publisher of one service: encodes, injects trace context and produces.

    While a handler runs, outputs are buffered (see :meth:`begin` / :meth:`take`).
    """

    def __init__(self, bus: KafkaBus, service: str) -> None:
        self._bus = bus
        self._service = service
        self._buffer: list[_Out] | None = None
        self._producer: Producer | None = None
        self._errors: list[str] = []
        self.transactional = False
        self.in_transaction = False
        """exactly_once: whether a transaction is open (one begins with the first record produced)."""
        self._plain: Producer | None = None
        self.phase = 0
        """``ts_event`` of the last clock tick this service handled or published (lockstep tagging)."""
        self.published_offsets: Offsets = {}
        """Per (logical topic, partition): the offset after the last acknowledged record (phase reports)."""
        self.last_tick: dict[str, Any] | None = None
        """The last clock tick this publisher (a lockstep source) published (a standby's heartbeats follow it)."""
        self.after: Offsets | None = None
        """Offsets stamped on the next clock tick as ``x-after`` (set by the source's phase barrier)."""
        self.waiting: Callable[[str], list[str]] | None = None
        """The source's phase barrier: the consumers a tick of a kind waits for, stamped on it as ``x-wait``."""
        self.records_published = 0
        """Records published other than clock ticks (a lockstep consumer: whether a tick had outputs)."""

    @property
    def last_tick_id(self) -> str | None:
        """``event_id`` of the last clock tick this publisher (a lockstep source) published."""
        return None if self.last_tick is None else self.last_tick["event_id"]

    @property
    def producer(self) -> Producer:
        """The service's producer, created on first use."""
        if self._producer is None:
            self._producer = self._bus._make_producer(self._service, self.transactional, self._linger_ms())
        return self._producer

    def _linger_ms(self) -> int:
        """The producer's ``linger.ms``: the bus's, and at least :data:`PHASE_LINGER_MS` in lockstep.

        In lockstep every record is flushed at the end of its phase (a consumer's outputs and report when
        it has handled the tick, a source's records by its barrier before each tick and before the first
        record after one), and a flush sends at once whatever the linger. So a linger costs no time
        there: it only holds a phase's records until the flush, which sends them as one request per
        partition instead of a request for the first record and more for the rest.
        """
        return max(self._bus.linger_ms, PHASE_LINGER_MS) if self._bus.lockstep else self._bus.linger_ms

    def publish(self, topic: str, record: dict[str, Any], *, key: str | None = None) -> None:
        """Encode ``record`` for ``topic`` and produce it (or buffer it while a handler runs)."""
        value = self._bus.codec.encode(topic, record)
        headers = [(k, v.encode()) for k, v in inject_headers({}).items()]
        headers.append(("ts_event", str(record["ts_event"]).encode()))
        if self._bus.lockstep:
            headers.append((PHASE_HEADER, str(self.phase).encode()))
            if topic == CLOCK_TOPIC:  # a lockstep source's tick: it opens the next phase
                if self.after is not None:
                    headers.append((AFTER_HEADER, encode_after(self.after).encode()))
                if self.waiting is not None:
                    headers.append((WAIT_HEADER, encode_wait(self.waiting(record["kind"])).encode()))
                self.phase, self.last_tick = int(record["ts_event"]), record
        if topic != CLOCK_TOPIC:
            self.records_published += 1
        out = (topic, key, value, headers)
        if self._buffer is not None:
            self._buffer.append(out)
        else:
            self.produce(out)

    def dead_letter(self, topic: str, payload: bytes | dict[str, Any], reason: str, *, key: str | None = None,
                    error: str = "") -> None:
        """Send refused input to ``dlq.<topic>`` with the reason in headers (buffered like outputs)."""
        data = dead_letter_payload(self._bus.codec, topic, payload)
        letter = DeadLetter(topic, key, data, reason, error or reason, self._service)
        self._bus.metrics_for(self._service).dead_letters.labels(topic, reason).inc()
        headers = [(k, v.encode()) for k, v in inject_headers(letter.dlq_headers()).items()]
        out = (letter.dlq_topic, key, data, headers)
        if self._buffer is not None:
            self._buffer.append(out)
        else:
            self.produce(out)

    def begin_transaction(self) -> None:
        """exactly_once: open a transaction unless one is open."""
        if self.transactional and not self.in_transaction:
            self.producer.begin_transaction()
            self.in_transaction = True

    def produce(self, out: _Out, *, outside_transaction: bool = False) -> None:
        """Hand one encoded record to the producer, waiting for queue space when it is full.

        ``outside_transaction`` (exactly_once): send it at once with a plain idempotent producer, in no
        transaction (a phase report that vouches only for outputs already committed).
        """
        if outside_transaction and self.transactional:
            if self._plain is None:
                self._plain = self._bus._make_producer(self._service, False, self._linger_ms())
            producer = self._plain
        else:
            self.begin_transaction()
            producer = self.producer
        topic, key, value, headers = out
        physical = self._bus.physical(topic)
        while True:
            try:
                producer.produce(
                    physical, value=value, key=key.encode() if key is not None else None,
                    headers=headers, on_delivery=self._on_delivery,
                )
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
        labelled(self._bus.metrics_for(self._service).messages_out, topic).inc()

    def begin(self) -> None:
        """Start buffering the outputs of one handler call."""
        self._buffer = []

    def take(self) -> list[_Out]:
        """Stop buffering and return what the handler published."""
        out, self._buffer = self._buffer or [], None
        return out

    def _on_delivery(self, err: KafkaError | None, msg: Any) -> None:
        if err is not None:
            self._errors.append(f"{msg.topic()}: {err}")
            return
        if not self._bus.lockstep:  # only phase reports need the offsets: keep the live path lean
            return
        tp = (self._bus.logical(msg.topic()), msg.partition())
        if msg.offset() >= self.published_offsets.get(tp, 0):
            self.published_offsets[tp] = msg.offset() + 1

    def connect(self, *topics: str, timeout_s: float = 30.0) -> None:
        """Create the producer and fetch the metadata of ``topics`` now, so that the first record published does not
        wait for the connection to the cluster (the admin API's first halt took about 500 ms more than the next)."""
        for topic in topics:
            self.producer.list_topics(self._bus.physical(topic), timeout=timeout_s)

    def flush(self, timeout_s: float = 30.0) -> None:
        """Wait until every produced record is acknowledged; raise :class:`DeliveryFailed` otherwise."""
        if self._plain is not None:
            self._plain.flush(timeout_s)
        if self._producer is None:
            return
        remaining = self._producer.flush(timeout_s)
        if remaining:
            raise DeliveryFailed(f"{remaining} records not acknowledged within {timeout_s}s")
        if self._errors:
            errors, self._errors = self._errors, []
            raise DeliveryFailed("; ".join(errors[:5]))

    def release(self) -> None:
        """Let go of the producers once flushed, unless a transaction is open: their librdkafka handles end with
        them, so none goes on reconnecting (and logging) once the broker is gone. A later record makes a new one."""
        if not self.in_transaction:
            self._producer = self._plain = None


class KafkaBus(Bus):
    """Kafka transport for the services of one process (normally one service)."""

    def __init__(
        self,
        client_config: dict[str, str],
        *,
        codec: TopicCodec | None = None,
        topic_prefix: str = "",
        delivery: Delivery = "at_least_once",
        batch_size: int = 500,
        commit_every: int = 1000,
        commit_interval_ms: int = 100,
        poll_timeout_s: float = 0.05,
        linger_ms: int = 1,
        instance_id: str = "0",
        producer_overrides: dict[str, Any] | None = None,
        consumer_overrides: dict[str, Any] | None = None,
        lockstep: bool = False,
        checkpoint_every_days: float = 0.0,
        checkpoint_key: bytes | None = None,
        checkpoint_previous_key: bytes | None = None,
    ) -> None:
        if delivery not in ("at_least_once", "exactly_once"):
            raise ValueError(f"delivery must be 'at_least_once' or 'exactly_once', not {delivery!r}")
        self.client_config = dict(client_config)
        self.codec = codec or TopicCodec()
        self.prefix = topic_prefix
        self.delivery = delivery
        self.batch_size = batch_size
        self.commit_every = commit_every
        self.commit_interval_ms = commit_interval_ms
        self.poll_timeout_s = poll_timeout_s
        self.linger_ms = linger_ms
        self.instance_id = instance_id
        self.producer_overrides = producer_overrides or {}
        self.consumer_overrides = consumer_overrides or {}
        self.lockstep = lockstep
        self.checkpoint_every_ns = round(checkpoint_every_days * DAY_NS)
        """Lockstep: event time between two checkpoints of an engine rebuilt after a restart (0: none)."""
        self.checkpoint_key = checkpoint_key
        """The key checkpoints are sealed and checked with (engine_state.seal); without one none are written or read."""
        self.checkpoint_previous_key = checkpoint_previous_key
        """While the key is rotated, the one before it: a checkpoint sealed with it is still restored."""
        self.checkpoint_max_bytes = self.codec.catalog.topic(CHECKPOINT_TOPIC).max_message_bytes
        """The largest record a producer sends (the checkpoint topic's ``max.message.bytes``): a checkpoint too large
        for it is skipped."""
        self.topic_rank = {t.name: i for i, t in enumerate(self.codec.catalog)}
        self._publishers: dict[str, KafkaPublisher] = {}
        self._loops: dict[str, ConsumerLoop] = {}
        self._metrics: dict[str, ServiceMetrics] = {}

    def physical(self, topic: str) -> str:
        """The broker's name of a logical topic (with the isolation prefix)."""
        return self.prefix + topic

    def logical(self, physical: str) -> str:
        """The logical name of a broker topic."""
        return physical[len(self.prefix):] if self.prefix and physical.startswith(self.prefix) else physical

    def metrics_for(self, service: str) -> ServiceMetrics:
        """The metrics of ``service`` (created on first use)."""
        if service not in self._metrics:
            self._metrics[service] = ServiceMetrics(service)
        return self._metrics[service]

    def set_metrics(self, service: str, metrics: ServiceMetrics) -> None:
        """Use ``metrics`` (e.g. the ones the service's HTTP endpoint exports) for ``service``."""
        self._metrics[service] = metrics

    def publisher(self, service: str) -> KafkaPublisher:
        """The publisher of ``service``."""
        if service not in self._publishers:
            self._publishers[service] = KafkaPublisher(self, service)
        return self._publishers[service]

    def subscribe(self, service: str, topics: Iterable[str], handler: Handler,
                  acts_on: Iterable[str] | None = None, rebuild: bool = False,
                  checkpointed: Engine | None = None) -> None:
        """Consume ``topics`` in the consumer group of ``service``; run it with :meth:`run_service`. ``acts_on``: the
        clock tick kinds on which the handler may publish with no record released to it (None: every kind).
        ``rebuild``: after a restart, hand the handler what it handled before, outputs discarded
        (:mod:`quorum_common.bus.rebuild`; in the order it handled it in lockstep, in broker-time order without).
        ``checkpointed``: in lockstep, with ``rebuild``, the engine behind ``handler``, whose state the loop writes to
        ``state.checkpoints`` every ``checkpoint_every_days`` of event time and a restart rebuilds from."""
        topics = list(topics)
        for t in topics:
            self.codec.catalog.topic(t)
        pub = self.publisher(service)
        if self.delivery == "exactly_once":
            if pub._producer is not None:
                raise RuntimeError(f"{service} published before subscribing; exactly_once needs subscribe first")
            pub.transactional = True
        wants_clock = CLOCK_TOPIC in topics
        if self.lockstep and not wants_clock:
            topics.append(CLOCK_TOPIC)
        checkpoints = checkpointed if rebuild and self.lockstep and self.checkpoint_every_ns > 0 else None
        if checkpoints is not None and self.checkpoint_key is None:
            log.warning("no checkpoint key (QUORUM_CHECKPOINT_KEY): no checkpoints; a restart rebuilds the engine "
                        "from its whole history", extra={"service": service})
            checkpoints = None
        self._loops[service] = ConsumerLoop(self, service, topics, handler, pub, wants_clock,
                                            None if acts_on is None else tuple(acts_on), rebuild, checkpoints)

    def subscribe_engine(self, service: str, engine: Engine) -> None:
        """Subscribe ``engine`` (see :meth:`Bus.subscribe_engine`), rebuilt after a restart where it allows it."""
        self.subscribe(service, engine.inputs, engine.on_message, engine.acts_on, engine.rebuilds_from_history,
                       engine)

    def _make_producer(self, service: str, transactional: bool, linger_ms: int) -> Producer:
        conf: dict[str, Any] = {
            **self.client_config,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": linger_ms,
            "compression.type": "lz4",
            "socket.nagle.disable": True,
            "client.id": f"{self.prefix}{service}-{self.instance_id}",
            # An engine checkpoint can be megabytes (other records stay far smaller): as large as its topic takes.
            "message.max.bytes": self.checkpoint_max_bytes,
            **self.producer_overrides,
        }
        if transactional:
            conf["transactional.id"] = f"{self.prefix}{service}-{self.instance_id}"
        producer = Producer(conf)
        if transactional:
            producer.init_transactions(30)
        return producer

    def _make_consumer(self, service: str, on_commit: Callable[[KafkaError | None, list[TopicPartition]], None]
                       | None = None) -> Consumer:
        """The consumer of ``service``'s group, with ``on_commit`` taking the broker's answers to its commits."""
        # Lockstep: one instance per service, a static member of its group, so a successor started after a crash
        # takes the partitions over at once instead of after the session timeout of the one that died.
        static = {"group.instance.id": f"{self.prefix}{service}-{self.instance_id}"} if self.lockstep else {}
        return Consumer({
            **self.client_config,
            **static,
            "group.id": consumer_group(self.prefix, service),
            "client.id": f"{self.prefix}{service}-{self.instance_id}",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed" if self.delivery == "exactly_once" else "read_uncommitted",
            "fetch.wait.max.ms": 100,
            "socket.nagle.disable": True,
            **({"on_commit": on_commit} if on_commit is not None else {}),
            **self.consumer_overrides,
        })

    def phase_barrier(self, source: str, services: Iterable[str], timeout_s: float = 120.0) -> PhaseBarrier:
        """The lockstep barrier of the data source ``source``: it waits for the phase reports of ``services``."""
        return PhaseBarrier(self.client_config, self.publisher(source), services, self.prefix, timeout_s, self.codec,
                            read_committed=self.delivery == "exactly_once", metrics=self.metrics_for(source))

    def loop(self, service: str) -> ConsumerLoop:
        """The consumer loop of a subscribed service."""
        return self._loops[service]

    def run_service(self, service: str, stop: threading.Event | None = None, idle_exit_s: float | None = None) -> None:
        """Run the consumer loop of ``service`` until ``stop`` is set (or after ``idle_exit_s`` idle)."""
        self._loops[service].run(stop or threading.Event(), idle_exit_s)

    def flush(self) -> None:
        """Wait for every publisher's records to be acknowledged."""
        for pub in self._publishers.values():
            pub.flush()

    def close(self) -> None:
        """Flush every producer, then let go of them (consumer loops close themselves when they stop)."""
        self.flush()
        for pub in self._publishers.values():
            pub.release()


CHECKPOINT_HEADROOM_BYTES = 4096
"""Room kept below the checkpoint topic's ``max.message.bytes`` for what Kafka adds around a record (its batch
header, key and headers), which the producer counts against that limit."""


class ConsumerLoop:
    """Consume → handle → produce → commit, for one service."""

    def __init__(self, bus: KafkaBus, service: str, topics: list[str], handler: Handler, publisher: KafkaPublisher,
                 wants_clock: bool = True, acts_on: tuple[str, ...] | None = None, rebuild: bool = False,
                 checkpointed: Engine | None = None):
        self.bus = bus
        self.wants_clock = wants_clock
        self.acts_on = acts_on if wants_clock else ()
        """Tick kinds on which the handler may publish with no record released to it (None: every kind); stated in
        every phase report, so the source knows when to wait for this consumer."""
        self.held = PhaseBuffer(bus.topic_rank) if bus.lockstep else None
        self.service = service
        self.topics = topics
        self.handler = handler
        self.publisher = publisher
        self.metrics = bus.metrics_for(service)
        self.records = self.metrics.records
        self._rebuild_gauges = RebuildGauges(self.metrics) if rebuild else None
        """Set when the loop rebuilds its engine at start from the history its group committed (bus/rebuild.py)."""
        self._checkpointed = checkpointed
        """Lockstep: the engine whose state the loop checkpoints, and restores at start (bus/rebuild.py)."""
        self._checkpoint_due: int | None = None
        """Event time from which the next checkpoint is taken (set at the first tick handled)."""
        self._handled_upto: dict[tuple[str, int], int] = {}
        """Lockstep, with checkpoints: per input partition, the offset up to which the engine has handled every
        record (from where the rebuild ended, then as the loop goes on): a checkpoint's offsets, which must name
        every partition, also those that brought nothing since the restart."""
        self.consumer: Consumer | None = None
        self.handled = 0
        self.ready = threading.Event()
        self._last_lag_check = 0.0
        self._uncommitted: dict[tuple[str, int], int] = {}
        """Next offset per partition of records handled (at least once) but not yet committed."""
        self._since_commit = 0
        self._commit_due = 0.0
        """Monotonic time before which a caught-up consumer does not commit (see ``commit_interval_ms``)."""
        self._assigned: set[tuple[str, int]] = set()
        self._ticks: deque[tuple[Message, bytes, Offsets]] = deque()
        """Lockstep: the clock ticks received but not yet handled, oldest first, each with the offsets it waits
        for. One batch may bring several (a tick no consumer reports on is followed at once by the next)."""
        self._received: dict[tuple[str, int], int] = {}
        """Lockstep: next offset per partition of the records received (handled or held)."""
        self._committed: dict[tuple[str, int], int] = {}
        """The offsets last committed (or sent in a committed transaction), per partition."""
        self._resume_at: dict[tuple[str, int], int] = {}
        """After a rebuild, until the first assignment: the offset of each partition where the replayed history
        ends, to consume from (bus/rebuild.py)."""

    def run(self, stop: threading.Event, idle_exit_s: float | None = None) -> None:
        """Process batches until ``stop`` is set; the last batch is committed before returning."""
        self.consumer = self.bus._make_consumer(self.service, on_commit=self._on_commit)
        if self._rebuild_gauges is not None:
            self._rebuild(self._rebuild_gauges)
        self.consumer.subscribe(
            [self.bus.physical(t) for t in self.topics],
            on_assign=self._on_assign,
        )
        eos = self.bus.delivery == "exactly_once"
        _ = self.publisher.producer  # create (and init transactions) before consuming
        idle_since: float | None = None
        try:
            while not stop.is_set():
                msgs = self._next_batch(self._wait_s())
                self._maybe_report_lag()
                if not msgs:
                    if time.monotonic() >= self._commit_due:
                        self._settle()
                    if idle_exit_s is not None and self.ready.is_set():
                        idle_since = idle_since or time.monotonic()
                        if time.monotonic() - idle_since > idle_exit_s:
                            break
                    continue
                idle_since = None
                if eos:
                    self._process_transaction(msgs)
                else:
                    self._process_at_least_once(msgs)
            self._settle(wait=True)  # a graceful stop commits what was handled (a failure commits nothing)
        finally:
            self.consumer.close()
            self.publisher.flush()
            # The loop is done with its producers: drop them now rather than when the garbage collector finds the bus
            # (a bus and its loops refer to each other), or they go on reconnecting, and logging, once the broker is
            # gone. A later record gets a new one.
            self.publisher.release()

    def _rebuild(self, gauges: RebuildGauges) -> None:
        """After a restart: hand the handler every record its group committed, in the order it handled them, with
        every output discarded (they reached their topics the first time)."""
        started = time.monotonic()
        if self.publisher.transactional:
            # Exactly once: a predecessor killed mid-transaction left its offsets pending, and the broker answers
            # no committed offset of the group until that transaction ends. Starting this service's transactional
            # producer (same transactional id) fences the predecessor off and aborts it at once.
            _ = self.publisher.producer
        ends = committed_ends(self.consumer, self.topics, self.bus.prefix)
        self._handled_upto = dict(ends)
        if not any(ends.values()):
            self._resume_at = {}  # a first start: from the group's commits, as always
            return
        self._resume_at = ends
        starts, restored = self._restore_checkpoint(ends)
        log.info("rebuilding state from input history", extra={
            "service": self.service, "partitions": sum(end > 0 for end in ends.values()), "checkpoint": restored})
        # Without lockstep a consumer may not read the clock: its history is placed by the clock's ticks all the same.
        placed_by = ends if CLOCK_TOPIC in self.topics else {**ends, **clock_ends(self.consumer, self.bus.prefix)}
        replay = HistoryReplay(self.bus.client_config, self.bus.codec, placed_by, self.bus.prefix, self.bus.topic_rank,
                               self.wants_clock, starts=starts)
        handed = failed = 0
        progress_at = started + REBUILD_PROGRESS_S
        try:
            for msg in replay:
                handed += 1
                if (now := time.monotonic()) > progress_at:
                    progress_at = now + REBUILD_PROGRESS_S
                    log.info("rebuilding state from input history", extra={
                        "service": self.service, "handed_to_engine": handed, "ticks": replay.ticks_done})
                    gauges.update(handed, now - started, running=True)
                self.publisher.begin()
                try:
                    self.handler(msg)
                except Exception:  # its first handling failed the same way and sent it to the dead-letter topic
                    failed += 1
                self.publisher.take()
        finally:
            gauges.update(handed, time.monotonic() - started, running=False)
        if replay.misplaced:
            log.warning("records read too far from their place in the history were handed over late",
                        extra={"service": self.service, "misplaced": replay.misplaced})
        log.info("state rebuilt from input history", extra={
            "service": self.service, "records": replay.records, "handed_to_engine": handed, "failed": failed,
            "late": replay.late, "most_held": replay.max_held, "checkpoint": restored,
            "seconds": round(time.monotonic() - started, 2)})

    def _restore_checkpoint(self, ends: dict[tuple[str, int], int]) -> tuple[dict[tuple[str, int], int], int | None]:
        """Restore the engine from its newest checkpoint that ``ends`` have passed, if any: the offsets the rebuild
        starts from (none: the beginning) and the event time of the checkpoint's tick (None: none restored). A
        checkpoint the engine refuses (another engine or other settings) or cannot read is logged and passed over."""
        engine = self._checkpointed
        if engine is None:
            return {}, None
        found = latest_checkpoint(self.bus.client_config, self.bus.codec, self.bus.prefix, self.service, ends)
        if found is None:
            return {}, None
        try:
            engine.restore(unseal(found["state"], self.bus.checkpoint_key, self.bus.checkpoint_previous_key))
        except Exception as exc:  # forged, of other settings, or unreadable: the whole history rebuilds the engine
            log.warning("checkpoint not restored; rebuilding from the whole history", extra={
                "service": self.service, "ts_event": found["ts_event"], "error": f"{type(exc).__name__}: {exc}"})
            return {}, None
        log.info("engine restored from a checkpoint", extra={"service": self.service, "ts_event": found["ts_event"]})
        return found["offsets"], found["ts_event"]

    def _on_assign(self, consumer: Consumer, parts: list[TopicPartition]) -> None:
        if self._resume_at:  # the first assignment after a rebuild: go on where the replayed history ends
            for tp in parts:
                tp.offset = self._resume_at.get((tp.topic, tp.partition), tp.offset)
            self._resume_at = {}
            consumer.assign(parts)
        self._assigned = {(tp.topic, tp.partition) for tp in parts}
        self._received = {tp: o for tp, o in self._received.items() if tp in self._assigned}
        self.ready.set()

    def _wait_s(self) -> float:
        """How long the next poll may wait: the poll timeout, or until the pending commit is due (see
        :func:`poll_wait_s`)."""
        if not self._uncommitted:
            return self.bus.poll_timeout_s
        return poll_wait_s(self._commit_due - time.monotonic(), self.bus.poll_timeout_s)

    def _next_batch(self, wait_s: float) -> list:
        """Wait for one record (up to ``wait_s``), then take whatever else is already queued.

        ``consume(n, timeout)`` alone waits for ``n`` records or the whole timeout, which would add
        the timeout to every hop when traffic is light.
        """
        first = self.consumer.poll(wait_s)
        if first is None:
            return []
        return [first, *self.consumer.consume(self.bus.batch_size - 1, 0)] if self.bus.batch_size > 1 else [first]

    def _note_handled(self, offsets: dict[tuple[str, int], int]) -> None:
        """Remember the offsets to commit next, per (broker topic, partition): those that moved since the last
        commit."""
        for key, offset in offsets.items():
            if self._committed.get(key) != offset:
                self._uncommitted[key] = offset

    def _process_at_least_once(self, msgs: list) -> None:
        """Handle a batch; its outputs are produced at once, its offsets committed by :meth:`_settle`."""
        self._note_handled(self._handle_batch(msgs))
        self._since_commit += len(msgs)
        if self._since_commit >= self.bus.commit_every:
            self._settle()

    def _settle(self, wait: bool = False) -> None:
        """Wait for every output to be acknowledged, then commit the offsets handled so far.

        Called when the consumer has caught up (nothing more queued) and ``commit_interval_ms`` has
        passed since the last commit, every ``commit_every`` records while it is busy, and at a
        graceful stop: the wait for acknowledgements and the commit are paid once per burst or
        interval, not once per record, so they stay off the path of the next record and the broker
        is not asked for a commit per record. The commit waits for the broker's answer only when ``wait``
        is set (a graceful stop); otherwise :meth:`_on_commit` takes the answer.
        """
        if not self._uncommitted:
            return
        if self.bus.delivery == "exactly_once":
            self._transact(self._commit_transaction)  # offsets only: no batch since had outputs
            return
        self.publisher.flush()
        offsets = [TopicPartition(t, p, o) for (t, p), o in self._uncommitted.items()]
        self._commit(offsets, wait)
        self._mark_committed()

    def _mark_committed(self) -> None:
        """After a commit: the pending offsets are committed, the next commit is due after the interval."""
        self._committed.update(self._uncommitted)
        self._uncommitted = {}
        self._since_commit = 0
        self._commit_due = time.monotonic() + self.bus.commit_interval_ms / 1000

    def _commit(self, offsets: list[TopicPartition], wait: bool = False) -> None:
        """Commit offsets whose records' outputs were acknowledged. Unless ``wait``, the commit goes out without
        waiting for the broker's answer: the loop is then free for the next record, which in lockstep is often the
        next tick (a synchronous commit of an idle consumer held it up by a broker round trip, several
        milliseconds under a replay). The answer comes to :meth:`_on_commit` at a later poll."""
        self.consumer.commit(offsets=offsets, asynchronous=not wait)

    def _on_commit(self, err: KafkaError | None, partitions: list[TopicPartition]) -> None:
        """The broker's answer to a commit (served by the consumer's poll). Offsets it refused are logged and
        committed again at the next settle, unless a later offset of their partition is pending or committed by then,
        or the partition is no longer this consumer's (a rebalance moved it: its new owner commits it)."""
        failed = [tp for tp in partitions if err is not None or tp.error is not None]
        if not failed:
            return
        log.warning("offset commit failed; retrying at the next commit", extra={
            "service": self.service, "error": str(err or failed[0].error),
            "partitions": [f"{tp.topic}[{tp.partition}]@{tp.offset}" for tp in failed]})
        for tp in failed:
            key = (tp.topic, tp.partition)
            if key in self._assigned and self._committed.get(key) == tp.offset:
                del self._committed[key]
                self._uncommitted.setdefault(key, tp.offset)

    def _process_transaction(self, msgs: list) -> None:
        """Handle a batch; when it produced anything, commit its outputs in one transaction with every
        offset handled so far. A batch that produced nothing (lockstep: records held for a later phase,
        a tick this service only reports) opens no transaction: its offsets ride with the next one, are
        committed alone every ``commit_every`` records while it is busy, or by :meth:`_settle` once it has
        caught up."""
        def handle() -> None:
            self._note_handled(self._handle_batch(msgs))
            self._since_commit += len(msgs)
            if self.publisher.in_transaction or (self._uncommitted and self._since_commit >= self.bus.commit_every):
                self._commit_transaction()
        self._transact(handle)

    def _commit_transaction(self) -> None:
        """Send the offsets handled so far into the open transaction (opening one if needed) and commit it."""
        producer = self.publisher.producer
        self.publisher.begin_transaction()
        if self._uncommitted:
            offsets = [TopicPartition(t, p, o) for (t, p), o in self._uncommitted.items()]
            producer.send_offsets_to_transaction(offsets, self.consumer.consumer_group_metadata(), 30)
        producer.commit_transaction(30)
        self.publisher.in_transaction = False
        self._mark_committed()

    def _transact(self, work: Callable[[], None]) -> None:
        """Run ``work``; on a Kafka error abort the open transaction and rewind to the committed offsets."""
        try:
            work()
        except KafkaException as exc:
            log.error("transaction failed, aborting and rewinding", extra={"service": self.service, "error": str(exc)})
            if self.publisher.in_transaction:
                self.publisher.producer.abort_transaction(30)
                self.publisher.in_transaction = False
            self._rewind()
            if exc.args and _fatal(exc.args[0]):
                raise

    def _rewind(self) -> None:
        """Seek back to the committed offsets after an aborted transaction (held records are read again)."""
        self._uncommitted, self._committed = {}, {}
        if self.held is not None:
            self.held, self._ticks, self._received = PhaseBuffer(self.bus.topic_rank), deque(), {}
        assignment = self.consumer.assignment()
        for tp in self.consumer.committed(assignment, timeout=30):
            self.consumer.seek(TopicPartition(tp.topic, tp.partition, tp.offset if tp.offset >= 0 else 0))

    def _handle_batch(self, msgs: list) -> dict[tuple[str, int], int]:
        """Handle every record of a batch; return the offsets to commit (next offset per broker topic and
        partition)."""
        next_offsets: dict[tuple[str, int], int] = {}
        for m in msgs:
            err = m.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    log.error("consumer error", extra={"service": self.service, "error": str(err)})
                    if _fatal(err):
                        raise KafkaException(err)
                continue
            self._handle_one(m)
            next_offsets[(m.topic(), m.partition())] = m.offset() + 1
        if self.held is None:
            return next_offsets
        self._received.update(next_offsets)
        while self._ticks and self._try_tick():
            pass
        return self._lockstep_offsets()

    def _lockstep_offsets(self) -> dict[tuple[str, int], int]:
        """Lockstep: the offsets to commit, per partition up to its first record not yet handled.

        Held records and a held tick stay uncommitted, so a consumer that stops or crashes mid-phase
        leaves them to its successor instead of losing them.
        """
        first = {(self.bus.physical(t), p): o for (t, p), o in self.held.first_offsets().items()}
        if self._ticks:
            tick = self._ticks[0][0]
            tp = (self.bus.physical(tick.topic), tick.partition)
            first[tp] = min(first.get(tp, tick.offset), tick.offset)
        return {tp: min(o, first.get(tp, o)) for tp, o in self._received.items()}

    def _handle_one(self, m: Any) -> None:
        topic = self.bus.logical(m.topic())
        key = m.key().decode("utf-8", "replace") if m.key() is not None else None
        headers = headers_to_dict(m.headers())
        if not meant_for(headers, self.service):
            return  # a dead letter sent back to the service that refused it: this one handled the original
        payload = m.value() or b""
        self.records.received(topic)
        try:
            schema, record = self.bus.codec.decode(topic, payload)
        except CodecError as exc:
            self._dead_letter(DeadLetter(topic, key, payload, REASON_DECODE, f"{type(exc).__name__}: {exc}",
                                         self.service, m.partition(), m.offset(), headers))
            return
        msg = Message(topic, key, record, schema, headers, m.partition(), m.offset())
        if self.held is None:
            self._dispatch(msg, payload)
        elif topic != CLOCK_TOPIC:
            self.held.add(msg, payload)
        else:
            try:
                after = decode_after(headers[AFTER_HEADER]) if AFTER_HEADER in headers else {}
            except ValueError as exc:
                self._dead_letter(DeadLetter(topic, key, payload, REASON_DECODE, str(exc), self.service,
                                             m.partition(), m.offset(), headers))
                return
            self._ticks.append((msg, payload, after))

    def _try_tick(self) -> bool:
        """Handle the oldest held tick once every assigned partition was read up to the offsets it carries;
        whether it was handled."""
        msg, payload, after = self._ticks[0]
        need = {(self.bus.physical(t), p): o for (t, p), o in after.items()}
        tps = [TopicPartition(t, p) for (t, p) in need if (t, p) in self._assigned]
        for tp in self.consumer.position(tps) if tps else []:
            offset = need[(tp.topic, tp.partition)]
            if tp.offset < offset and not self._started_past(tp, offset):
                return False
        self._ticks.popleft()
        self.publisher.phase = msg.ts_event
        published = self.publisher.records_published
        released = self.held.release(msg.ts_event)
        for held, held_payload in released:
            self._dispatch(held, held_payload)
        if self.wants_clock:
            self._dispatch(msg, payload)
        if waited_on(self.service, msg.headers):
            self._report(msg)
        elif self.publisher.records_published != published:
            # Report anyway: the source adds these outputs to a later tick's x-after.
            self._note_unwaited_outputs(msg, released)
            self._report(msg)
        # After the report, so that writing a checkpoint (the critic's, the largest, takes tens of milliseconds) never
        # holds the phase: the desk goes on while this service writes it.
        self._maybe_checkpoint(msg)
        return True

    def _report(self, tick: Message) -> None:
        """Report ``tick`` handled to the source (a phase report on ``sys.progress``).

        The report promises that every output so far is acknowledged. exactly_once: when this batch produced
        outputs, the report is part of their transaction and becomes readable with them; otherwise it vouches only
        for committed transactions and goes out at once, outside any.
        """
        self.publisher.flush()
        report = phase_report(self.service, tick.value, self.publisher.published_offsets, self.topics, self.acts_on)
        outside = not self.publisher.in_transaction
        self.publisher.produce((PROGRESS_TOPIC, self.service, self.bus.codec.encode(PROGRESS_TOPIC, report), []),
                               outside_transaction=outside)
        if outside:  # in a transaction the commit sends it; else the producer's linger must not hold it
            self.publisher.flush()

    def _maybe_checkpoint(self, tick: Message) -> None:
        """Once a checkpoint is due, write the engine's state with the offsets it has handled up to: every record
        before them and none after (held records and ticks are not handled yet). Under exactly_once it joins the
        batch's transaction, committed with offsets at or past its own. An engine with work in flight gives none:
        the next tick tries again."""
        engine = self._checkpointed
        if engine is None:
            return
        if self._checkpoint_due is None:
            self._checkpoint_due = tick.ts_event + self.bus.checkpoint_every_ns
        if tick.ts_event < self._checkpoint_due or (state := engine.checkpoint()) is None:
            return
        for tp, offset in self._lockstep_offsets().items():
            self._handled_upto[tp] = max(self._handled_upto.get(tp, 0), offset)
        record = checkpoint_record(self.service, engine, tick, self._handled_upto, seal(state, self.bus.checkpoint_key),
                                   self.bus.logical)
        payload = self.bus.codec.encode(CHECKPOINT_TOPIC, record)
        self._checkpoint_due = tick.ts_event + self.bus.checkpoint_every_ns
        if len(payload) > self.bus.checkpoint_max_bytes - CHECKPOINT_HEADROOM_BYTES:
            # The producer would refuse it and stop the service; the last checkpoint that fitted stays the newest.
            log.warning("engine checkpoint too large for state.checkpoints: skipped (raise the topic's "
                        "max_message_bytes in schemas/topics.yaml)", extra={
                            "service": self.service, "ts_event": tick.ts_event, "bytes": len(payload),
                            "limit": self.bus.checkpoint_max_bytes})
            return
        self.publisher.produce((CHECKPOINT_TOPIC, self.service, payload, []))
        log.info("engine checkpoint written", extra={"service": self.service, "ts_event": tick.ts_event,
                                                     "bytes": len(state)})

    def _note_unwaited_outputs(self, tick: Message, released: list[tuple[Message, bytes]]) -> None:
        """Log outputs of a tick the source did not wait for this service on: expected after a record from outside
        the lockstep (no ``x-phase``: an admin's command, which the source cannot see coming), otherwise a sign
        that the engine's ``acts_on`` misses the tick's kind."""
        outside = any(PHASE_HEADER not in m.headers for m, _payload in released)
        log.log(logging.INFO if outside else logging.WARNING,
                "published on a tick the source does not wait for this service on" + (
                    " (records from outside the lockstep were released to it)" if outside
                    else ": its engine's acts_on may miss this tick kind"),
                extra={"service": self.service, "tick": tick.value["kind"], "ts_event": tick.ts_event})

    def _started_past(self, tp: TopicPartition, offset: int) -> bool:
        """Whether a partition that returned no record yet (position unknown) starts at or after ``offset``."""
        if tp.offset >= 0:
            return False
        committed = group_committed(self.consumer, [TopicPartition(tp.topic, tp.partition)], timeout_s=10)[0].offset
        return committed >= offset

    def _dispatch(self, msg: Message, payload: bytes) -> None:
        """Run the handler for one record; its outputs are produced only if it returns."""
        topic, key, headers = msg.topic, msg.key, msg.headers
        start = time.perf_counter()
        self.publisher.begin()
        try:
            with consume_span(self.service, topic, headers):
                self.handler(msg)
        except Exception as exc:  # the record goes to the DLQ, the loop goes on
            self.publisher.take()
            self._dead_letter(DeadLetter(topic, key, payload, REASON_HANDLER, f"{type(exc).__name__}: {exc}",
                                         self.service, msg.partition, msg.offset, headers))
            return
        for out in self.publisher.take():
            self.publisher.produce(out)
        self.records.handled(topic, time.perf_counter() - start)
        self.handled += 1

    def _dead_letter(self, letter: DeadLetter) -> None:
        log.warning("dead letter", extra={"service": self.service, "topic": letter.topic, "reason": letter.reason,
                                          "error": letter.error, "offset": letter.offset})
        self.metrics.dead_letters.labels(letter.topic, letter.reason).inc()
        headers = [(k, v.encode()) for k, v in letter.dlq_headers().items()]
        self.publisher.produce((letter.dlq_topic, letter.key, letter.payload, headers))

    def _maybe_report_lag(self, every_s: float = 5.0) -> None:
        """Set the consumer-lag gauge from the high watermarks the last fetches brought back.

        The cached watermarks cost no broker round trip: asking the broker for every assigned
        partition would stall the loop (and every record queued behind it) each time.
        """
        now = time.monotonic()
        if now - self._last_lag_check < every_s:
            return
        self._last_lag_check = now
        try:
            for tp in self.consumer.position(self.consumer.assignment()):
                _low, high = self.consumer.get_watermark_offsets(tp, cached=True)
                if tp.offset >= 0 and high >= 0:
                    gauge = self.metrics.consumer_lag.labels(self.bus.logical(tp.topic), str(tp.partition))
                    gauge.set(high - tp.offset)
        except KafkaException as exc:
            log.debug("lag check failed", extra={"error": str(exc)})
