"""Kafka benchmarks in one process: produce and consume throughput, produce→consume latency."""

from __future__ import annotations

import statistics
import threading
import time
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from quorum_common.benchjson import Figure, write_result
from quorum_common.codec import AvroCodec
from quorum_common.schemas import default_catalog
from quorum_common.testing.samples import sample_record


def _payload(target_bytes: int = 150) -> bytes:
    """A real single-object-encoded BarClosed record of about ``target_bytes``."""
    registry = default_catalog().registry
    schema = registry.get("quorum.v1.BarClosed")
    codec = AvroCodec(registry)
    rec = sample_record(schema, seed=1)
    data = codec.encode(schema, rec)
    rec["venue"] = rec["venue"] + "X" * max(0, target_bytes - len(data))
    return codec.encode(schema, rec)


def _topic(conf: dict[str, str], partitions: int) -> str:
    name = f"bench.{uuid.uuid4().hex[:8]}"
    admin = AdminClient(conf)
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result()
    return name


def _delete(conf: dict[str, str], name: str) -> None:
    AdminClient(conf).delete_topics([name])[name].result()


def throughput(conf: dict[str, str], n: int = 400_000) -> list[Figure]:
    """Produce ``n`` records as fast as possible, then consume them; msg/s for each."""
    payload = _payload()
    topic = _topic(conf, 6)
    producer = Producer({**conf, "enable.idempotence": True, "acks": "all", "linger.ms": 10,
                         "batch.size": 1_000_000, "queue.buffering.max.messages": 1_000_000})
    start = time.perf_counter()
    for i in range(n):
        while True:
            try:
                producer.produce(topic, payload)
                break
            except BufferError:
                producer.poll(0.001)
        if i % 10_000 == 0:
            producer.poll(0)
    producer.flush(60)
    produce_s = time.perf_counter() - start

    consumer = Consumer({**conf, "group.id": f"bench-{uuid.uuid4().hex[:6]}", "enable.auto.commit": False,
                         "auto.offset.reset": "earliest", "fetch.max.bytes": 52_428_800,
                         "max.partition.fetch.bytes": 10_485_760, "queued.min.messages": 1_000_000})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(6)])
    got = 0
    first = consumer.consume(1, 10)  # connection set-up is not part of the rate
    got += len(first)
    start = time.perf_counter()
    while got < n:
        got += len(consumer.consume(10_000, 1.0))
    consume_s = time.perf_counter() - start
    consumer.close()
    _delete(conf, topic)
    return [
        Figure(f"produce {len(payload)}-byte Avro records (acks=all, idempotent)", round(n / produce_s), "msg/s",
               150_000, "min"),
        Figure(f"consume {len(payload)}-byte Avro records", round((n - len(first)) / consume_s), "msg/s",
               250_000, "min"),
    ]


def latency(conf: dict[str, str], rate: int, seconds: float = 5.0) -> tuple[float, float, int]:
    """Produce at ``rate`` msg/s for ``seconds``; p50 and p99 produce→consume latency in ms."""
    payload = _payload()
    topic = _topic(conf, 1)
    consumer = Consumer({**conf, "group.id": f"lat-{uuid.uuid4().hex[:6]}", "enable.auto.commit": False,
                         "auto.offset.reset": "earliest", "fetch.wait.max.ms": 1, "fetch.min.bytes": 1})
    consumer.assign([TopicPartition(topic, 0, 0)])
    consumer.consume(1, 1.0)
    latencies: list[float] = []
    n = int(rate * seconds)
    done = threading.Event()

    def consume() -> None:
        while len(latencies) < n and not done.is_set():
            for m in consumer.consume(1000, 0.05):
                if m.error() is None:
                    sent = int.from_bytes(m.headers()[0][1], "little")
                    latencies.append((time.perf_counter_ns() - sent) / 1e6)

    t = threading.Thread(target=consume)
    t.start()
    producer = Producer({**conf, "enable.idempotence": True, "acks": "all", "linger.ms": 0})
    start = time.perf_counter()
    for i in range(n):
        due = start + i / rate
        while time.perf_counter() < due:
            pass
        producer.produce(topic, payload, headers=[("t", time.perf_counter_ns().to_bytes(8, "little"))])
        producer.poll(0)
    producer.flush(30)
    t.join(timeout=30)
    done.set()
    consumer.close()
    _delete(conf, topic)
    warm = latencies[len(latencies) // 20:]  # drop the first 5 % (connection warm-up)
    q = statistics.quantiles(warm, n=100)
    return q[49], q[98], len(latencies)


def run(conf: dict[str, str]) -> None:
    """Run both benchmarks and write ``kafka_throughput.json`` and ``kafka_latency.json``."""
    write_result("kafka_throughput", throughput(conf), notes="one process, 6 partitions, linger.ms=10")
    figures = []
    for rate in (1_000, 10_000):
        p50, p99, count = latency(conf, rate)
        figures.append(Figure(f"p50 produce->consume at {rate} msg/s", round(p50, 3), "ms", None))
        figures.append(Figure(f"p99 produce->consume at {rate} msg/s", round(p99, 3), "ms",
                              5.0 if rate == 10_000 else None, "max"))
    write_result("kafka_latency", figures, notes="producer and consumer in one process, acks=all, linger.ms=0, "
                 "1 partition, 5 s per rate, first 5% dropped")
