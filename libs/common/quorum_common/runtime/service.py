"""Running a service: as its own process over Kafka, or with others on the in-process bus.

A :class:`ServiceSpec` says how to build a service's engine (or source) from its settings; the
same spec runs under :func:`run_kafka_service` and :func:`wire_inprocess`.
"""

from __future__ import annotations

import gc
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Protocol

from quorum_common.bus.base import Publisher
from quorum_common.bus.inprocess import InProcessBus
from quorum_common.bus.kafka import KafkaBus
from quorum_common.bus.kafka_admin import ensure_topics
from quorum_common.bus.lockstep import CLOCK_TOPIC
from quorum_common.bus.standby import stand_by
from quorum_common.engine import Engine, Source
from quorum_common.event_dates import utc_date
from quorum_common.runtime.config import ServiceSettings
from quorum_common.runtime.http import HttpServer, build_app
from quorum_common.runtime.logging import setup_logging
from quorum_common.runtime.metrics import ServiceMetrics
from quorum_common.runtime.tracing import setup_tracing
from quorum_common.schemas import default_catalog

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServiceSpec:
    """How to build one service."""

    name: str
    settings_cls: type[ServiceSettings]
    engine: Callable[[ServiceSettings, Publisher], Engine] | None = None
    source: Callable[[ServiceSettings], Source] | None = None
    instrument: Callable[[Engine | Source, ServiceMetrics], None] | None = None
    """Registers the service's own metrics (e.g. a collector reading the engine's state at scrape time)."""


def wire_inprocess(bus: InProcessBus, spec: ServiceSpec, settings: ServiceSettings) -> Engine | Source:
    """Attach a service to the in-process bus; return its engine or source."""
    if spec.engine is not None:
        engine = spec.engine(settings, bus.publisher(spec.name))
        bus.subscribe_engine(spec.name, engine)
        return engine
    if spec.source is not None:
        source = spec.source(settings)
        source.attach(bus.publisher(spec.name))
        bus.add_source(spec.name, source.records())
        return source
    raise ValueError(f"service {spec.name} has neither an engine nor a source")


class SourceBarrier(Protocol):
    """What a lockstep source waits on between its records (:class:`~quorum_common.bus.phase_barrier.PhaseBarrier`)."""

    def __call__(self) -> None:
        """Wait until the consumers are through the last tick's phase (before a tick, or a record after one)."""

    def finish(self) -> None:
        """At the end: wait until every consumer has handled the last tick."""


def publish_source(source: Source, publisher: Publisher, stop: threading.Event, speed: float = 0.0,
                   progress_every: int = 10_000, barrier: SourceBarrier | None = None,
                   progress_s: float = 2.0) -> int:
    """Publish a source's records; ``speed`` > 0 paces them at that multiple of event time.

    Progress: a ``published`` log record (the records so far and the event date reached, ``through``) every
    ``progress_every`` records, or after a record that comes ``progress_s`` seconds (wall time: only the log reads
    it) after the last one logged (or the first record), whichever is first: a short or slow replay shows its way
    too.

    ``barrier`` (lockstep runs over Kafka) is called before every clock tick and before the first record
    after a tick (the bars of the next bar time leave only once the desk has finished the last phase, so
    no bar waits in a topic while the desk is busy: the time from a bar to its orders is the desk's own),
    and finished at the end so the last tick is handled too (not after ``stop``: a stopping source does not
    wait for its consumers).
    """
    count = 0
    first_ts: int | None = None
    started = 0.0
    after_tick = False
    logged_at: float | None = None  # from the first record: loading the data takes a while
    for topic, key, record in source.records():
        if stop.is_set():
            break
        is_tick = topic == CLOCK_TOPIC
        if barrier is not None and (is_tick or after_tick):
            barrier()  # before the pace's wait: its flush sends a tick someone waits for at once
        after_tick = is_tick
        if speed > 0:
            if first_ts is None:  # the pace starts at the first record, not before the data is loaded
                first_ts, started = record["ts_event"], time.monotonic()
            due = started + (record["ts_event"] - first_ts) / 1e9 / speed
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        publisher.publish(topic, record, key=key)
        count += 1
        now = time.monotonic()
        if logged_at is None:
            logged_at = now
        if count % progress_every == 0 or now - logged_at >= progress_s:
            log.info("published", extra={"records": count, "through": utc_date(record["ts_event"]).isoformat()})
            logged_at = now
    if barrier is not None and not stop.is_set():
        barrier.finish()
    return count


def run_kafka_service(spec: ServiceSpec, settings: ServiceSettings, replay_speed: float = 0.0,
                      create_topics: bool = True) -> None:
    """Run one service as its own process: HTTP endpoint, tracing, Kafka loop, graceful stop."""
    setup_logging(spec.name, settings.log_level)
    setup_tracing(spec.name, settings.otel_exporter)
    client = settings.kafka_client_config()
    if create_topics:
        ensure_topics(client, default_catalog(), settings.topic_prefix, check_partitions=False)
    key, previous = settings.checkpoint_keys()
    bus = KafkaBus(client, topic_prefix=settings.topic_prefix, delivery=settings.delivery,
                   batch_size=settings.batch_size, commit_every=settings.commit_every,
                   commit_interval_ms=settings.commit_interval_ms, linger_ms=settings.linger_ms,
                   instance_id=settings.instance_id, lockstep=settings.lockstep,
                   checkpoint_every_days=settings.checkpoint_every_days,
                   checkpoint_key=key, checkpoint_previous_key=previous)
    metrics = ServiceMetrics(spec.name)
    bus.set_metrics(spec.name, metrics)
    stop = threading.Event()
    source = spec.source(settings) if spec.source is not None else None

    def on_signal(*_: object) -> None:
        stop.set()
        if source is not None:
            source.stop()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)

    loop = None
    if spec.engine is not None:
        engine = spec.engine(settings, bus.publisher(spec.name))
        bus.subscribe_engine(spec.name, engine)
        loop = bus.loop(spec.name)
    if spec.instrument is not None:
        spec.instrument(engine if spec.engine is not None else source, metrics)
    http = HttpServer(build_app(spec.name, metrics, lambda: loop is None or loop.ready.is_set()),
                      settings.http_host, settings.http_port)
    port = http.start()
    # What exists now (modules, models, data) lives as long as the process: keep it out of every later
    # garbage collection, so that collections stay short pauses on the record path.
    gc.collect()
    gc.freeze()
    log.info("service started", extra={"http_port": port, "topic_prefix": settings.topic_prefix,
                                       "delivery": settings.delivery})
    try:
        if source is not None:
            publisher = bus.publisher(spec.name)
            source.attach(publisher)
            with bus.phase_barrier(spec.name, settings.lockstep_groups, settings.lockstep_timeout_s) \
                    if settings.lockstep else nullcontext() as barrier:
                n = publish_source(source, publisher, stop, replay_speed, barrier=barrier)
                bus.flush()
                log.info("source finished", extra={"records": n})
                if barrier is not None and settings.lockstep_standby and not stop.is_set():
                    stand_by(barrier, publisher, stop)
        elif loop is not None:
            bus.run_service(spec.name, stop)
    finally:
        bus.close()
        if spec.engine is not None:
            engine.close()
        http.stop()
        log.info("service stopped")


def run_all_inprocess(bus: InProcessBus, specs: Iterable[tuple[ServiceSpec, ServiceSettings]]) -> int:
    """Wire every service to ``bus`` and deliver until the queue is empty; return records delivered."""
    for spec, settings in specs:
        wire_inprocess(bus, spec, settings)
    return bus.run()
