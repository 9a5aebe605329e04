"""The desk over Kafka, every service its own process, as `make up` runs it (lockstep: every engine
takes the decisions of the embedded run): bars/s end to end and bar → order latency with the replay
paced at about 1k bars/s.

Latency of an order: from the moment ingest produced the last bar of its bar time (the record's
producer timestamp, 1 ms resolution) to the arrival of the order on ``orders.proposed`` at a
consumer, so it spans ingest → alpha/regime → manager → portfolio, every Kafka hop between them and
the phase barrier before each of the BAR_CLOSE, VOTE and REBALANCE ticks.
"""

from __future__ import annotations

import os
import statistics
import time
import uuid
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition
from quorum_common import kafka_local
from quorum_common.benchjson import Figure, write_result
from quorum_common.bus.kafka_admin import watermark_offsets
from quorum_common.bus.topic_codec import TopicCodec
from quorum_common.phases import bar_time
from quorum_desk import local

SYMBOLS_PER_DAY = 23  # the default data: 20 stocks, SPX, VIX and (monthly) BTC-USD
RUNS = ((1000, "at_least_once"), (150, "at_least_once"), (1000, "exactly_once"))
"""(bars/s asked for, delivery): the issue's 1k as `make up` runs it, a slow pace (the phase barrier caps
the rate the replay reaches), and 1k under exactly_once, as the Helm chart runs it."""


def _watcher(topics: list[str]) -> Consumer:
    consumer = Consumer({"bootstrap.servers": kafka_local.BOOTSTRAP, "group.id": f"bench-{uuid.uuid4().hex[:6]}",
                         "enable.auto.commit": False, "fetch.wait.max.ms": 100,
                         "socket.nagle.disable": True})
    parts = []
    for t in topics:
        for p in consumer.list_topics(t, timeout=10).topics[t].partitions:
            _low, high = watermark_offsets(consumer, TopicPartition(t, p))
            parts.append(TopicPartition(t, p, high))
    consumer.assign(parts)
    return consumer


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(rate: int, start: str, end: str, delivery: str = "at_least_once") -> list[Figure]:
    """One paced replay at about ``rate`` bars/s under ``delivery``; its figures. The broker is left running."""
    kafka_local.up()
    watcher = _watcher(["md.bars", "orders.proposed"])
    # Event-time pacing: 5 trading days per 7 calendar days.
    speed = rate / SYMBOLS_PER_DAY * 86_400 * 7 / 5
    env = {"QUORUM_START": start, "QUORUM_END": end, "QUORUM_REPLAY_SPEED": f"{speed:.0f}", "QUORUM_DELIVERY": delivery}
    codec = TopicCodec()
    last_bar: dict[int, float] = {}  # bar time -> producer timestamp of its last bar (epoch s)
    orders: list[tuple[int, float]] = []  # (bar time, arrival at the watcher in epoch s)
    bars = 0
    first = last = None
    broker = kafka_local.broker_pid()
    broker_first = broker_last = 0.0
    sampled_since = sampled_at = 0.0  # broker CPU is read at most every 0.2 s, not on every record
    try:
        local.up(env=env)
        idle_since = time.monotonic()
        while time.monotonic() - idle_since < 10:
            m = watcher.poll(0.05)
            if m is None or m.error() is not None:
                continue
            now = time.monotonic()
            idle_since = now
            rec = codec.decode(m.topic(), m.value())[1]
            if broker is not None and now - sampled_at >= 0.2:
                broker_last, sampled_at = _cpu_s(broker), now
                if not sampled_since:
                    broker_first, sampled_since = broker_last, now
            if m.topic() == "md.bars":
                bars += 1
                first, last = first or now, now
                produced = m.timestamp()[1] / 1000
                last_bar[rec["ts_event"]] = max(last_bar.get(rec["ts_event"], 0.0), produced)
            else:
                orders.append((bar_time(rec["ts_event"]), time.time()))
    finally:
        watcher.close()
        local.down(broker=False)
    latencies = [(seen - last_bar[t]) * 1000 for t, seen in orders if t in last_bar]
    q = statistics.quantiles(latencies, n=100) if len(latencies) >= 2 else [float("nan")] * 99
    if not bars or not latencies:
        raise RuntimeError(f"the replay at {rate} bars/s produced {bars} bars and {len(latencies)} orders")
    at = f"{rate} bars/s" + ("" if delivery == "at_least_once" else f", {delivery}")
    target = 25.0 if (rate, delivery) == RUNS[0] else None
    return [
        Figure(f"bars/s end to end (asked {at})", round(bars / max(last - first, 1e-9)), "bars/s", None),
        Figure(f"bar -> order latency p50 at {at}", round(q[49], 2), "ms", None),
        Figure(f"bar -> order latency p99 at {at}", round(q[98], 2), "ms", target),
        Figure(f"orders measured at {at}", len(latencies), "orders", None),
        Figure(f"broker CPU during the replay at {at}", round((broker_last - broker_first)
               / max(sampled_at - sampled_since, 1e-9), 2), "cores", None),
    ]


def run(start: str = "2007-01-01", end: str = "2007-12-31") -> None:
    """Every run of :data:`RUNS`, after a warm-up replay of the year before; writes ``bench/results/pipeline.json``."""
    try:
        measure(RUNS[0][0], "2006-01-01", "2006-12-31")  # warm-up: a production broker's JVM is not fresh
        figures = [f for rate, delivery in RUNS for f in measure(rate, start, end, delivery)]
    finally:
        kafka_local.down()
    write_result("pipeline", figures, notes=(
        f"{start}..{end}, default mandate; every service its own process in lockstep (phase barrier before "
        "every clock tick), at-least-once unless the figure says exactly_once (a Kafka transaction per handled "
        "batch, the phase report inside it), optimiser early (a solve starts in a worker at BAR_CLOSE and lands "
        "in its rebalance tick, as inline); after a "
        "warm-up replay of the year before on the same broker; latency from the producer timestamp of the last "
        "bar of a bar time to each order's arrival"))


if __name__ == "__main__":
    run()
