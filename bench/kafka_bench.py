"""Kafka benchmarks in one process: produce and consume throughput, produce→consume latency, and the CPU a
service's consumer loop spends on each record it handles."""

from __future__ import annotations

import multiprocessing
import statistics
import threading
import time
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from quorum_common.benchjson import Figure, write_result
from quorum_common.bus.kafka import KafkaBus
from quorum_common.bus.kafka_admin import delete_catalog_topics, ensure_topics
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
    admin = AdminClient(conf)  # keep the client alive until the future resolves
    admin.delete_topics([name])[name].result()


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


def service_loop(conf: dict[str, str], n: int = 50_000, rounds: int = 3) -> list[Figure]:
    """CPU per record of a service's consumer loop (:class:`~quorum_common.bus.kafka.KafkaBus`, at least once, no
    lockstep): it reads ``n`` bars and its handler publishes one signal for each, as the alpha service does.

    ``n`` bars are produced first, then the loop handles them; the CPU of the whole process from the first record
    handled to the last, over ``n``, best of ``rounds`` (each on topics of its own). It counts everything the
    framework adds to a handler: poll, decode, dispatch (no lockstep phases), metrics, trace context, encode,
    produce and the commits, with librdkafka's threads.
    """
    catalog = default_catalog()
    bar, signal = (sample_record(catalog.registry.get(catalog.topic(t).value_schema), seed=1, list_len=1)
                   for t in ("md.bars", "signals.raw"))
    best = float("inf")
    for _ in range(rounds):
        prefix = f"bench-loop-{uuid.uuid4().hex[:6]}-"
        ensure_topics(conf, catalog, prefix)
        try:
            source = KafkaBus(conf, topic_prefix=prefix).publisher("ingest")
            for i in range(n):
                source.publish("md.bars", {**bar, "event_id": f"b{i}", "ts_event": 10**18 + i}, key=f"S{i % 20}")
            source.flush()
            bus = KafkaBus(conf, topic_prefix=prefix)
            out = bus.publisher("alpha")
            handled, marks, done = [0], [], threading.Event()

            def handler(msg, out=out, handled=handled, marks=marks, done=done) -> None:
                if not handled[0]:
                    marks.append(time.process_time())  # the whole process: every thread, librdkafka's too
                out.publish("signals.raw", {**signal, "ts_event": msg.ts_event}, key=msg.key)
                handled[0] += 1
                if handled[0] == n:
                    marks.append(time.process_time())
                    done.set()

            bus.subscribe("alpha", ["md.bars"], handler)
            loop = threading.Thread(target=bus.run_service, args=("alpha", done), daemon=True)
            loop.start()
            if not done.wait(300):
                raise RuntimeError(f"the loop handled {handled[0]} of {n} records in 300 s")
            loop.join(60)
            best = min(best, (marks[1] - marks[0]) / n)
        finally:
            delete_catalog_topics(conf, catalog, prefix)
    return [Figure("service loop: consume a bar, publish a signal, CPU per record", round(best * 1e6, 2), "us",
                   None)]


def _latency_consumer(conf: dict[str, str], topic: str, n: int, ready, results) -> None:
    """Child process: read ``n`` records and send back each one's produce→consume latency in ms."""
    consumer = Consumer({**conf, "group.id": f"lat-{uuid.uuid4().hex[:6]}", "enable.auto.commit": False,
                         "auto.offset.reset": "earliest", "fetch.wait.max.ms": 1, "fetch.min.bytes": 1})
    consumer.assign([TopicPartition(topic, 0, 0)])
    consumer.poll(0.5)
    ready.set()
    latencies: list[float] = []
    deadline = time.monotonic() + 120
    while len(latencies) < n and time.monotonic() < deadline:
        m = consumer.poll(0.01)
        if m is not None and m.error() is None:
            sent = int.from_bytes(m.headers()[0][1], "little")
            latencies.append((time.monotonic_ns() - sent) / 1e6)
    consumer.close()
    results.put(latencies)


WARMUP_S = 30.0
"""Seconds of produce -> consume at 10k msg/s, not measured, before the latency runs: a freshly started
broker compiles its fetch path as it goes (its first 10-20 s at 10k msg/s gave a p99 of 16-124 ms, later
runs 2-4 ms), and a desk's broker is a long-running one."""


def latency(conf: dict[str, str], rate: int, seconds: float = 5.0) -> tuple[float, float, int]:
    """Produce at ``rate`` msg/s for ``seconds`` while another process consumes; p50/p99 in ms."""
    payload = _payload()
    topic = _topic(conf, 1)
    n = int(rate * seconds)
    ctx = multiprocessing.get_context("spawn")
    ready, results = ctx.Event(), ctx.Queue()
    child = ctx.Process(target=_latency_consumer, args=(conf, topic, n, ready, results))
    child.start()
    ready.wait(30)
    producer = Producer({**conf, "enable.idempotence": True, "acks": "all", "linger.ms": 0})
    producer.produce(topic, payload, headers=[("t", time.monotonic_ns().to_bytes(8, "little"))])
    producer.flush(10)
    # Paced in 1 ms ticks: every record due by now is sent, then the producer sleeps, so it does not
    # spin a core that the broker and the consumer need on this 2-core machine.
    start = time.perf_counter()
    i = 1
    while i < n:
        due_now = min(n, int((time.perf_counter() - start) * rate) + 1)
        while i < due_now:
            producer.produce(topic, payload, headers=[("t", time.monotonic_ns().to_bytes(8, "little"))])
            i += 1
        producer.poll(0)
        time.sleep(0.001)
    producer.flush(30)
    latencies = results.get(timeout=150)
    child.join(30)
    _delete(conf, topic)
    warm = latencies[len(latencies) // 20:]  # drop the first 5 % (connection warm-up)
    q = statistics.quantiles(warm, n=100)
    return q[49], q[98], len(latencies)


def run(conf: dict[str, str]) -> None:
    """Run the benchmarks and write ``kafka_throughput.json``, ``service_loop.json`` and ``kafka_latency.json``."""
    write_result("kafka_throughput", throughput(conf), notes="one process, 6 partitions, linger.ms=10")
    write_result("service_loop", service_loop(conf), notes="one service's consumer loop (KafkaBus, at least once, no "
                 "lockstep) handling 50k bars, its handler publishing one signal each: process CPU (every thread) "
                 "from the first record handled to the last, per record, best of 3 rounds")
    latency(conf, 10_000, WARMUP_S)  # not measured: a freshly started broker's JIT (see WARMUP_S)
    figures = []
    for rate in (1_000, 10_000):
        p50, p99, _count = latency(conf, rate)
        figures.append(Figure(f"p50 produce->consume at {rate} msg/s", round(p50, 3), "ms", None))
        figures.append(Figure(f"p99 produce->consume at {rate} msg/s", round(p99, 3), "ms",
                              5.0 if rate == 10_000 else None, "max"))
    write_result("kafka_latency", figures, notes="producer and consumer in two processes, acks=all, "
                 "linger.ms=0, 1 partition, 5 s per rate, first 5% dropped, after 30 s at 10k msg/s not measured "
                 "(the broker's JIT); broker JVM: ZGC, 1 GB heap (kafka_local)")
