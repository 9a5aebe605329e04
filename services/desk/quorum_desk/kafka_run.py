"""The desk over a real Kafka broker inside one process: each service its own consumer group and
thread, the ingest replay in lockstep. Used by the equivalence and replay tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from quorum_common.bus.kafka import Delivery, KafkaBus
from quorum_common.bus.kafka_admin import ensure_topics
from quorum_common.runtime.service import publish_source
from quorum_common.schemas import default_catalog

from quorum_desk.composition import CONSUMERS, SOURCE, consumer_inputs
from quorum_desk.engine import service_settings


@dataclass
class KafkaRun:
    """What the Kafka run did."""

    prefix: str
    published: int
    wall_s: float


def run_over_kafka(client_config: dict[str, str], prefix: str, overrides: dict[str, dict[str, Any]] | None = None,
                   timeout_s: float = 600.0, delivery: Delivery = "at_least_once", elsewhere: Collection[str] = (),
                   meanwhile: Callable[[], None] | None = None) -> KafkaRun:
    """Replay the data through every service over Kafka under ``prefix``; return when all is consumed.

    ``elsewhere``: services this run does not start (the caller runs them, e.g. as their own processes; the
    replay waits for their phase reports like any other's). ``meanwhile`` runs in the calling thread while the
    replay goes on in another (e.g. to kill and restart one of them); the run returns once both are done.
    """
    overrides = overrides or {}
    ensure_topics(client_config, default_catalog(), prefix)
    stop = threading.Event()
    threads, buses, engines = [], [], []
    for spec in (s for s in CONSUMERS if s.name not in elsewhere):
        bus = KafkaBus(client_config, topic_prefix=prefix, delivery=delivery, lockstep=True,
                       consumer_overrides={"session.timeout.ms": 6000})
        engine = spec.engine(service_settings(spec, overrides), bus.publisher(spec.name))
        bus.subscribe_engine(spec.name, engine)
        buses.append((spec.name, bus))
        engines.append(engine)
        threads.append(threading.Thread(target=bus.run_service, args=(spec.name, stop), name=spec.name, daemon=True))
    for t in threads:
        t.start()
    source_bus: KafkaBus | None = None
    try:
        for name, bus in buses:
            if not bus.loop(name).ready.wait(60):
                raise RuntimeError(f"{name} got no partitions within 60 s")
        source_bus = KafkaBus(client_config, topic_prefix=prefix, delivery=delivery, lockstep=True)
        started = time.perf_counter()
        source = SOURCE.source(service_settings(SOURCE, overrides))
        with source_bus.phase_barrier(SOURCE.name, consumer_inputs(), timeout_s=timeout_s) as barrier:
            replay = _Replay(lambda: publish_source(source, source_bus.publisher(SOURCE.name), threading.Event(),
                                                    barrier=barrier))
            if meanwhile is None:
                replay.run()
            else:
                replay.start()
                meanwhile()
                replay.join()
        return KafkaRun(prefix, replay.result(), time.perf_counter() - started)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
        for engine in engines:
            engine.close()
        # The source's producer, now: each consumer loop lets go of its own as it ends (ConsumerLoop.run), but the
        # source has no loop, and left to the garbage collector its producer went on reconnecting (and logging) once
        # the broker stopped.
        if source_bus is not None:
            source_bus.close()


class _Replay(threading.Thread):
    """The source's replay, in this thread (:meth:`run`) or another (:meth:`start`); :meth:`result` re-raises its
    failure."""

    def __init__(self, publish: Callable[[], int]) -> None:
        super().__init__(name="replay", daemon=True)
        self._publish = publish
        self._published: int | None = None
        self._error: BaseException | None = None

    def run(self) -> None:
        try:
            self._published = self._publish()
        except BaseException as exc:  # handed to the caller by result()
            self._error = exc

    def result(self) -> int:
        """The number of records published, or the replay's exception."""
        if self._error is not None:
            raise self._error
        if self._published is None:
            raise RuntimeError("the replay has not finished")
        return self._published
