"""The desk over a real Kafka broker inside one process: each service its own consumer group and
thread, the ingest replay in lockstep. Used by the equivalence and replay tests."""

from __future__ import annotations

import threading
import time
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
                   timeout_s: float = 600.0, delivery: Delivery = "at_least_once") -> KafkaRun:
    """Replay the data through every service over Kafka under ``prefix``; return when all is consumed."""
    overrides = overrides or {}
    ensure_topics(client_config, default_catalog(), prefix)
    stop = threading.Event()
    threads, buses, engines = [], [], []
    for spec in CONSUMERS:
        bus = KafkaBus(client_config, topic_prefix=prefix, delivery=delivery, lockstep=True,
                       consumer_overrides={"session.timeout.ms": 6000})
        engine = spec.engine(service_settings(spec, overrides), bus.publisher(spec.name))
        bus.subscribe_engine(spec.name, engine)
        buses.append((spec.name, bus))
        engines.append(engine)
        threads.append(threading.Thread(target=bus.run_service, args=(spec.name, stop), name=spec.name, daemon=True))
    for t in threads:
        t.start()
    try:
        for name, bus in buses:
            if not bus.loop(name).ready.wait(60):
                raise RuntimeError(f"{name} got no partitions within 60 s")
        source_bus = KafkaBus(client_config, topic_prefix=prefix, delivery=delivery, lockstep=True)
        started = time.perf_counter()
        source = SOURCE.source(service_settings(SOURCE, overrides))
        with source_bus.phase_barrier(SOURCE.name, consumer_inputs(), timeout_s=timeout_s) as barrier:
            published = publish_source(source, source_bus.publisher(SOURCE.name), threading.Event(), barrier=barrier)
        return KafkaRun(prefix, published, time.perf_counter() - started)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
        for engine in engines:
            engine.close()
