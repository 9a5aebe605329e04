"""The desk over Kafka, every service its own process, as `make up` runs it (lockstep: every engine
takes the decisions of the embedded run): bars/s end to end and bar → order latency with the replay
paced at about 1k bars/s.

Latency of an order: from the moment ingest produced the last bar of its bar time (the record's
producer timestamp, 1 ms resolution) to the arrival of the order on ``orders.proposed`` at a
consumer, so it spans ingest → alpha/regime → manager → portfolio, every Kafka hop between them and
the phase barrier before each of the BAR_CLOSE, VOTE and REBALANCE ticks. Orders come in groups (all the
orders of one bar time arrive together, and 2007 has a few dozen such bar times), so the p99 is about the
slowest bar time's latency: the p90 and the number of bar times with orders are reported beside it. Where the time
goes, over the bar times with orders: the median and the slowest of each stage, from the last bar to the arrival of
the ``BAR_CLOSE`` tick, from it to the ``VOTE`` tick, from that to the ``REBALANCE`` tick and from that to the first
order (each arrival as the same consumer sees it).

Beside the latency, the CPU each bar time costs over the measured window, summed over the desk's processes (every
service with its optimiser or refit worker) and over the broker, and the bars/s that cost allows on the machine's
cores if no process ever waited: the ceiling the machine sets on the rate, whatever the protocol.

Every replay runs on topics of its own (a fresh prefix: new consumer groups, no state left on compacted
topics by an earlier replay), so each one is a fresh desk: it replays the year before unmeasured (the desk
builds its history and positions, the broker's JVM warms up) and goes on into the measured window. Every run
must propose the very orders of the embedded desk over the same window, and the benchmark fails if one does not.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import statistics
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from quorum_common import kafka_local
from quorum_common.benchjson import Figure, write_result
from quorum_common.bus.kafka_admin import delete_catalog_topics, ensure_topics
from quorum_common.bus.lockstep import CLOCK_TOPIC
from quorum_common.bus.phase_barrier import PROGRESS_TOPIC
from quorum_common.bus.topic_codec import TopicCodec
from quorum_common.phases import bar_time
from quorum_common.runtime.config import settings_env
from quorum_common.schemas import TopicCatalog, default_catalog
from quorum_desk import local
from quorum_desk.engine import run_embedded

SYMBOLS_PER_DAY = 23  # the default data: 20 stocks, SPX, VIX and (monthly) BTC-USD
DEFAULT: dict[str, dict[str, Any]] = {}
OFF_PATH: dict[str, dict[str, Any]] = {"portfolio": {"solve_lag_sessions": 13}, "regime": {"refit_lag_rows": 5}}
"""The latency run's settings: optimiser solves land thirteen sessions and regime refits five rows after they were
asked for (README: portfolio and regime settings), so no bar waits for one: the workers yield the CPU to the
desk, which this replay keeps busy, and a solve then takes up to about 0.4-0.5 s. The desk gets through about 22
bar times a second, so eight sessions (0.36 s) were not always enough, nor were five before it."""
RUNS = ((1000, "at_least_once", DEFAULT, 1), (1000, "at_least_once", OFF_PATH, 3), (1000, "exactly_once", DEFAULT, 1))
"""(bars/s asked for, delivery, settings by service, replays): the issue's 1k as `make up` runs it by default, the same
with solves and refits off the order path, and 1k under exactly_once, as the Helm chart runs it. The off-path profile,
the one near the target, is replayed three times and its figures pool the three replays (each one's p99 beside): a
replay has about fifteen bar times with orders, so its p99 is about its slowest one, which moved by 10-20 ms from one
replay to the next on this machine."""
STAGES = (("bar -> BAR_CLOSE tick", None, "BAR_CLOSE"), ("BAR_CLOSE -> VOTE tick", "BAR_CLOSE", "VOTE"),
          ("VOTE -> REBALANCE tick", "VOTE", "REBALANCE"), ("REBALANCE tick -> first order", "REBALANCE", None))
"""The stages of a bar time's path to its orders: (name, from, to), a tick kind or None (the last bar, the first
order)."""
FIRST_RECORD_TIMEOUT_S = 180.0
"""How long the first bar may take (ingest starts, imports and loads the data sets) before the run fails."""
IDLE_END_S = 10.0
"""Once records flow, this long without one ends the run."""


def _since_ns(day: str) -> int:
    """Midnight UTC of ``day`` (ISO date) in event-time nanoseconds."""
    return int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp()) * 10**9


def _digest(order_ids: list[str]) -> str:
    """A short digest of a set of client order ids (order-independent)."""
    return hashlib.sha256("\n".join(sorted(order_ids)).encode()).hexdigest()[:16]


def _watcher(prefix: str, topics: list[str], catalog: TopicCatalog) -> Consumer:
    """A consumer of the freshly created ``prefix`` + ``topics`` from their first offset. The partitions come
    from the catalog, not from the broker's metadata, which may not list a topic yet just after its creation."""
    consumer = Consumer({"bootstrap.servers": kafka_local.BOOTSTRAP, "group.id": f"bench-{uuid.uuid4().hex[:6]}",
                         "enable.auto.commit": False, "fetch.wait.max.ms": 100,
                         "socket.nagle.disable": True})
    consumer.assign([TopicPartition(prefix + t, p, OFFSET_BEGINNING)
                     for t in topics for p in range(catalog.topic(t).partitions)])
    return consumer


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _with_children(pid: int) -> list[int]:
    """``pid`` and its live descendants (a service's optimiser or refit worker)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        with contextlib.suppress(OSError):
            todo += [int(c) for c in Path(f"/proc/{current}/task/{current}/children").read_text().split()]
    return found


class CpuMeter:
    """CPU seconds used by the desk's ``services`` (process id by service name; each with its workers, found anew at
    every reading) and by the ``broker``, read at most every ``every_s``; a process that ended counts with what it
    had used when last read."""

    def __init__(self, services: dict[str, int], broker: int | None, every_s: float = 0.2) -> None:
        self.services, self.broker, self.every_s = services, broker, every_s
        self.used: dict[int, float] = {}  # pid -> CPU seconds when last read
        self.owner: dict[int, str] = {}  # pid -> the service it is (or is a worker of)
        self.read_at = 0.0
        self.first: tuple[float, float, float] | None = None  # (monotonic time, desk, broker) of the first reading
        self.last: tuple[float, float, float] | None = None
        self.first_by_service: dict[str, float] = {}  # service -> CPU seconds at the first reading
        self.last_by_service: dict[str, float] = {}

    def _read(self, pid: int) -> float:
        """The CPU seconds of ``pid``: read now, or as last read when it has ended."""
        with contextlib.suppress(OSError):
            self.used[pid] = _cpu_s(pid)
        return self.used.get(pid, 0.0)

    def sample(self, now: float) -> None:
        """Read every process (unless read less than ``every_s`` ago)."""
        if now - self.read_at < self.every_s:
            return
        self.read_at = now
        for name, service in self.services.items():
            for pid in _with_children(service):
                self.owner[pid] = name
                self._read(pid)
        broker = self._read(self.broker) if self.broker is not None else 0.0
        self.last_by_service = {name: 0.0 for name in self.services}
        for pid, cpu in self.used.items():
            if pid in self.owner:
                self.last_by_service[self.owner[pid]] += cpu
        self.last = (now, sum(self.last_by_service.values()), broker)
        self.first = self.first or self.last
        self.first_by_service = self.first_by_service or dict(self.last_by_service)

    def between(self) -> tuple[float, float, float]:
        """(seconds, desk CPU seconds, broker CPU seconds) from the first reading to the last."""
        if self.first is None or self.last is None:
            return 0.0, 0.0, 0.0
        return tuple(b - a for a, b in zip(self.first, self.last, strict=True))  # type: ignore[return-value]

    def by_service(self) -> dict[str, float]:
        """CPU seconds of each service (with its workers) from the first reading to the last."""
        return {name: cpu - self.first_by_service.get(name, 0.0) for name, cpu in self.last_by_service.items()}


def stage_times(last_bar: dict[int, float], ticks: dict[int, dict[str, float]],
                orders: list[tuple[int, float]]) -> dict[str, list[float]]:
    """Milliseconds of each of :data:`STAGES` for every bar time with orders and all its ticks seen: ``last_bar`` is
    the time of a bar time's last bar, ``ticks`` the arrival of each tick kind of a bar time, ``orders`` the
    (bar time, arrival) of each order; all in epoch seconds."""
    first_order: dict[int, float] = {}
    for t, seen in orders:
        first_order[t] = min(seen, first_order.get(t, seen))
    times: dict[str, list[float]] = {name: [] for name, *_ in STAGES}
    for t, ordered in sorted(first_order.items()):
        kinds = ticks.get(t, {})
        if t not in last_bar or any(k not in kinds for _name, k, _to in STAGES[1:]):
            continue
        at = {**kinds, None: last_bar[t]}
        for name, start, end in STAGES:
            times[name].append(((ordered if end is None else at[end]) - at[start]) * 1000)
    return times


def _label(settings: dict[str, dict[str, Any]]) -> str:
    """How a run's settings read in its figures' names."""
    return "".join(f", {field}={value}" for fields in settings.values() for field, value in fields.items())


def _watch(watcher: Consumer, prefix: str, since: int, cpu: CpuMeter
           ) -> list[tuple[str, bytes, float, float, int | None]]:
    """Every record the watcher reads from event time ``since`` on, as (logical topic, value, producer timestamp,
    arrival, event time; times in epoch seconds), until none came for :data:`IDLE_END_S` (or none at all within
    :data:`FIRST_RECORD_TIMEOUT_S`); ``cpu`` is read as they come, from the first stamped record of the window on.
    Records are kept undecoded, their event time read from the ``ts_event`` header that every published record
    carries (None for the phase reports, which have no headers), so the watcher keeps up with the desk and an
    arrival time is not its own backlog."""
    seen: list[tuple[str, bytes, float, float, int | None]] = []
    measuring = False  # once a stamped record of the window came: the CPU meter starts there
    deadline = time.monotonic() + FIRST_RECORD_TIMEOUT_S
    while time.monotonic() < deadline:
        first = watcher.poll(0.05)  # then what else is queued: consume(n, timeout) alone would wait out its timeout
        if first is None:
            continue
        now, arrival = time.monotonic(), time.time()
        deadline = now + IDLE_END_S
        for m in [first, *watcher.consume(500, 0)]:
            if m.error() is not None:
                continue
            stamped = dict(m.headers() or ()).get("ts_event")  # phase reports carry none: decoded afterwards
            ts_event = int(stamped) if stamped is not None else None
            if ts_event is None or ts_event >= since:
                seen.append((m.topic()[len(prefix):], m.value(), m.timestamp()[1] / 1000, arrival, ts_event))
                measuring = measuring or ts_event is not None
        if measuring:
            cpu.sample(now)
    return seen


@dataclass
class Replay:
    """What one replay measured (times in seconds unless named)."""

    latencies_ms: list[float]
    """Bar -> order latency of every order of the measured window: to its arrival at a consumer (the watcher)."""
    produced_ms: list[float]
    """The same to the order's producer timestamp (as the bar's: when the portfolio handed it to its producer), so
    without the last hop to a consumer."""
    order_bar_times: int
    bars: int
    bars_seconds: float
    """From the first bar of the window to the last, as the watcher saw them."""
    bar_times: int
    reports: int
    cpu_seconds: float
    """Wall time of the CPU readings, first to last."""
    desk_cpu_s: float
    broker_cpu_s: float
    service_cpu_s: dict[str, float]
    """The desk's CPU seconds by service (each with its workers)."""
    stages_ms: dict[str, list[float]]
    digest: str
    """Of the client order ids proposed in the window."""

    @property
    def p99_ms(self) -> float:
        """This replay's own p99."""
        return _quantiles(self.latencies_ms)[98]


def _quantiles(values: list[float]) -> list[float]:
    """The 99 percentiles of ``values`` (NaN when fewer than two)."""
    return statistics.quantiles(values, n=100) if len(values) >= 2 else [float("nan")] * 99


def measure(rate: int, start: str, end: str, delivery: str = "at_least_once",
            measure_from: str | None = None, settings: dict[str, dict[str, Any]] | None = None) -> Replay:
    """One paced replay of ``start``..``end`` at about ``rate`` bars/s under ``delivery`` on a fresh desk (topics
    of its own, deleted afterwards), measured from ``measure_from`` (default ``start``) on, with ``settings``
    (service → field → value, given to the services as ``QUORUM_<FIELD>``). The broker is left running."""
    settings = settings or {}
    since = _since_ns(measure_from or start)
    kafka_local.up()
    conf, catalog = {"bootstrap.servers": kafka_local.BOOTSTRAP}, default_catalog().local()  # as `make up` lays out
    prefix = f"bench-{uuid.uuid4().hex[:8]}-"
    ensure_topics(conf, catalog, prefix)
    watcher = _watcher(prefix, ["md.bars", "orders.proposed", PROGRESS_TOPIC, CLOCK_TOPIC], catalog)
    # Event-time pacing: 5 trading days per 7 calendar days.
    speed = rate / SYMBOLS_PER_DAY * 86_400 * 7 / 5
    env = {"QUORUM_START": start, "QUORUM_END": end, "QUORUM_REPLAY_SPEED": f"{speed:.0f}", "QUORUM_DELIVERY": delivery,
           "QUORUM_TOPIC_PREFIX": prefix,
           **settings_env({field: value for fields in settings.values() for field, value in fields.items()})}
    try:
        local.up(env=env)
        cpu = CpuMeter(local.pids(), kafka_local.broker_pid())
        records = _watch(watcher, prefix, since, cpu)
    finally:
        watcher.close()
        local.down(broker=False)
        delete_catalog_topics(conf, catalog, prefix)
    codec = TopicCodec()
    last_bar: dict[int, float] = {}  # bar time -> producer timestamp of its last bar (epoch s)
    orders: list[tuple[int, float, float]] = []  # (bar time, arrival at the watcher, producer timestamp; epoch s)
    ticks: dict[int, dict[str, float]] = {}  # bar time -> tick kind -> arrival at the watcher (epoch s)
    order_ids: list[str] = []
    bars = reports = 0
    first = last = None
    for topic, value, produced, arrival, ts_event in records:
        if topic == PROGRESS_TOPIC:
            reports += codec.decode(topic, value)[1]["ts_event"] >= since
        elif topic == CLOCK_TOPIC:
            ticks.setdefault(bar_time(ts_event), {}).setdefault(codec.decode(topic, value)[1]["kind"], arrival)
        elif topic == "md.bars":
            bars += 1
            first, last = first or arrival, arrival
            last_bar[ts_event] = max(last_bar.get(ts_event, 0.0), produced)
        else:
            orders.append((bar_time(ts_event), arrival, produced))
            order_ids.append(codec.decode(topic, value)[1]["client_order_id"])
    measured = [(t, arrived, made) for t, arrived, made in orders if t in last_bar]
    latencies = [(arrived - last_bar[t]) * 1000 for t, arrived, _made in measured]
    if not bars or not latencies:
        raise RuntimeError(f"the replay at {rate} bars/s produced {bars} bars and {len(latencies)} orders")
    seconds, desk_s, broker_s = cpu.between()
    return Replay(latencies, [(made - last_bar[t]) * 1000 for t, _arrived, made in measured],
                  len({t for t, *_ in measured}), bars, last - first, max(len(last_bar), 1), reports, seconds, desk_s,
                  broker_s, cpu.by_service(),
                  stage_times(last_bar, ticks, [(t, arrived) for t, arrived, _made in orders]),
                  _digest(order_ids))


def pooled_figures(at: str, replays: list[Replay], target: float | None) -> list[Figure]:
    """The figures of the replays of one profile (``at`` names it), pooled: percentiles over every order of every
    replay, CPU and rates over their sums; with more than one replay, each one's p99 beside (no target)."""
    latencies = [ms for r in replays for ms in r.latencies_ms]
    q, made = _quantiles(latencies), _quantiles([ms for r in replays for ms in r.produced_ms])
    bars, bar_times = sum(r.bars for r in replays), sum(r.bar_times for r in replays)
    seconds, desk_s, broker_s = (sum(r.cpu_seconds for r in replays), sum(r.desk_cpu_s for r in replays),
                                 sum(r.broker_cpu_s for r in replays))
    cores = os.cpu_count() or 1
    pooled = f"{at}, {len(replays)} replays pooled" if len(replays) > 1 else at
    stages = {name: [ms for r in replays for ms in r.stages_ms.get(name, [])] for name, *_ in STAGES}
    return [
        Figure(f"bars/s end to end (asked {pooled})", round(bars / max(sum(r.bars_seconds for r in replays), 1e-9)),
               "bars/s", None),
        Figure(f"bar -> order latency p50 at {pooled}", round(q[49], 2), "ms", None),
        Figure(f"bar -> order latency p90 at {pooled}", round(q[89], 2), "ms", None),
        Figure(f"bar -> order latency p99 at {pooled}", round(q[98], 2), "ms", target),
        *[Figure(f"bar -> order produced, {name} at {pooled}", round(value, 2), "ms", None)
          for name, value in (("p50", made[49]), ("p99", made[98]))],
        *([Figure(f"bar -> order latency p99 at {at}, replay {i}", round(r.p99_ms, 2), "ms", None)
           for i, r in enumerate(replays, 1)] if len(replays) > 1 else []),
        Figure(f"bar times with orders at {pooled}", sum(r.order_bar_times for r in replays), "bar times", None),
        Figure(f"orders measured at {pooled}", len(latencies), "orders", None),
        Figure(f"phase reports per bar time at {pooled}", round(sum(r.reports for r in replays) / bar_times, 2),
               "reports", None),
        Figure(f"broker CPU during the replay at {pooled}", round(broker_s / max(seconds, 1e-9), 2), "cores", None),
        Figure(f"CPU per bar time, desk processes at {pooled}", round(desk_s * 1000 / bar_times, 2), "ms", None),
        Figure(f"CPU per bar time, broker at {pooled}", round(broker_s * 1000 / bar_times, 2), "ms", None),
        *[Figure(f"CPU per bar time, {service} at {pooled}",
                 round(sum(r.service_cpu_s.get(service, 0.0) for r in replays) * 1000 / bar_times, 2), "ms", None)
          for service in sorted({s for r in replays for s in r.service_cpu_s})],
        Figure(f"bars/s this CPU cost allows on {cores} cores at {pooled}",
               round(cores * bars / max(desk_s + broker_s, 1e-9)), "bars/s", None),
        *[Figure(f"{name}, {which} at {pooled}", round(pick(ms), 2), "ms", None)
          for name, ms in stages.items() if ms for which, pick in (("median", statistics.median), ("slowest", max))],
    ]


def embedded_digest(start: str, end: str, measure_from: str, settings: dict[str, dict[str, Any]] | None = None) -> str:
    """The digest of the orders the embedded desk proposes from ``measure_from`` on, replaying ``start``..``end``
    with ``settings`` (service → field → value)."""
    since, ids = _since_ns(measure_from), []
    run_embedded({**(settings or {}), "ingest": {"start": start, "end": end}}, extra_taps=[
        lambda m: ids.append(m.value["client_order_id"])
        if m.topic == "orders.proposed" and m.value["ts_event"] >= since else None])
    return _digest(ids)


def run(warm_from: str = "2006-01-01", start: str = "2007-01-01", end: str = "2007-12-31") -> None:
    """Every run of :data:`RUNS`: ``warm_from``..``end``, measured from ``start``; writes ``pipeline.json``."""
    profiles = {_label(settings): settings for _rate, _delivery, settings, _n in RUNS}
    expected = {label: embedded_digest(warm_from, end, start, settings) for label, settings in profiles.items()}
    try:
        runs = [[measure(rate, warm_from, end, delivery, measure_from=start, settings=settings) for _ in range(n)]
                for rate, delivery, settings, n in RUNS]
    finally:
        kafka_local.down()
    figures = [f for (rate, delivery, settings, _n), replays in zip(RUNS, runs, strict=True)
               for f in pooled_figures(f"{rate} bars/s" + ("" if delivery == "at_least_once" else f", {delivery}")
                                       + _label(settings), replays, 25.0 if (rate, delivery) == RUNS[0][:2] else None)]
    digests = [[r.digest for r in replays] for replays in runs]
    agree = all(d == expected[_label(settings)] for (*_, settings, _n), ds in zip(RUNS, digests, strict=True)
                for d in ds)
    by_profile = {label.lstrip(", ") or "default": digest for label, digest in expected.items()}
    write_result("pipeline", figures, notes=(
        f"{start}..{end}, default mandate; the topics as `make up` lays them out on the local broker (md.bars in "
        "one partition: schemas/topics.yaml local_partitions); every service its own process in lockstep (phase "
        "barrier before "
        "every clock tick, waiting for the services that may have published in the phase), at-least-once unless "
        "the figure says exactly_once (a Kafka transaction per handled batch, the phase report inside it), "
        "optimiser early (a solve starts in a worker at BAR_CLOSE and lands in its rebalance tick, as inline, or "
        "the number of sessions later the figure says); regime refits inline, or landing the rows later the figure "
        "says, fitted in a worker; every replay a "
        f"fresh desk on topics of its own, from {warm_from} (unmeasured warm-up of the desk and the broker) on; "
        "latency from the producer timestamp of the last bar of a bar time to each order's arrival (the off-path "
        "profile's figures pool three replays, each one's p99 beside); CPU per bar time "
        "from /proc over the measured window (desk: every service and its workers; broker: the JVM); "
        f"every run proposed the orders of the embedded desk with its settings (client order ids digests {by_profile})"
        if agree else f"ORDERS DIFFER: embedded {by_profile}, runs {digests}"))
    if not agree:
        raise RuntimeError(f"the replays of {start}..{end} proposed other orders than the embedded desk's "
                           f"(digests by settings {by_profile}): {digests}")


if __name__ == "__main__":
    run()
