"""Prometheus metrics of a service, named ``quorum_<service>_<what>_<unit>``.

Each service gets its own :class:`prometheus_client.CollectorRegistry`, so several services can
share a process (tests, the embedded desk) without their metric names colliding.
"""

from __future__ import annotations

import functools
import itertools
import re
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

_LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


def metric_prefix(service: str) -> str:
    """``quorum_<service>`` with the service name made safe for Prometheus."""
    return "quorum_" + re.sub(r"[^a-zA-Z0-9_]", "_", service)


class ServiceMetrics:
    """The metrics every service exports, plus a factory for its own ones."""

    def __init__(self, service: str, registry: CollectorRegistry | None = None) -> None:
        self.service = service
        self.registry = registry or CollectorRegistry()
        self.prefix = metric_prefix(service)
        self.records = HandledRecords(self.prefix, self.registry)
        """``messages_in_total`` and ``handler_duration_seconds``, by topic: updated for every record consumed."""
        self.messages_out = self.counter("messages_out_total", "Records published, by topic.", ["topic"])
        self.dead_letters = self.counter(
            "dead_letters_total", "Records sent to a dead-letter topic, by topic and reason.", ["topic", "reason"]
        )
        self.consumer_lag = self.gauge(
            "consumer_lag_messages", "Records behind the end of each partition.", ["topic", "partition"]
        )

    def counter(self, what: str, doc: str, labels: list[str] | None = None) -> Counter:
        """A counter named ``quorum_<service>_<what>``; ``what`` ends with its unit, e.g. ``_total``."""
        return Counter(f"{self.prefix}_{what}", doc, labels or [], registry=self.registry)

    def gauge(self, what: str, doc: str, labels: list[str] | None = None) -> Gauge:
        """A gauge named ``quorum_<service>_<what>``."""
        return Gauge(f"{self.prefix}_{what}", doc, labels or [], registry=self.registry)

    def histogram(
        self, what: str, doc: str, labels: list[str] | None = None, buckets: tuple[float, ...] = _LATENCY_BUCKETS
    ) -> Histogram:
        """A histogram named ``quorum_<service>_<what>``."""
        return Histogram(f"{self.prefix}_{what}", doc, labels or [], registry=self.registry, buckets=buckets)


class RebuildGauges:
    """The rebuild of a lockstep engine from its input history at start (:mod:`quorum_common.bus.rebuild`):
    ``<prefix>_rebuilding`` (1 while it runs), ``<prefix>_rebuild_records`` (records handed to the engine) and
    ``<prefix>_rebuild_duration_seconds`` (time taken), both updated while it runs; all 0 when there was none."""

    def __init__(self, metrics: ServiceMetrics) -> None:
        self._running = metrics.gauge("rebuilding", "1 while the engine is rebuilt from its input history at start.")
        self._records = metrics.gauge("rebuild_records", "Records handed to the engine by the rebuild at start.")
        self._seconds = metrics.gauge("rebuild_duration_seconds", "Time the rebuild at start took (so far).")

    def update(self, records: int, seconds: float, running: bool) -> None:
        """Set the three gauges."""
        self._running.set(int(running))
        self._records.set(records)
        self._seconds.set(seconds)


class HandledRecords:
    """``<prefix>_messages_in_total`` (records received) and ``<prefix>_handler_duration_seconds`` (time spent
    handling each one), by topic, for the one consumer loop of a service.

    prometheus_client's counter and histogram take a lock on every update: about 1.6 µs a record for both, on a
    path that a service walks for every record it consumes. Only the loop's thread updates these, so they are
    plain numbers, turned into metric families when Prometheus scrapes (this is a custom collector of the
    service's registry); the names, labels and buckets are those the two metrics had as prometheus_client ones.
    """

    def __init__(self, prefix: str, registry: CollectorRegistry,
                 buckets: tuple[float, ...] = _LATENCY_BUCKETS) -> None:
        self._names = (f"{prefix}_messages_in", f"{prefix}_handler_duration_seconds")
        self._bounds = buckets
        self._received: dict[str, int] = {}
        self._handled: dict[str, list[float]] = {}
        """topic -> the count of each bucket (the last one: above every bound), then the sum of the durations."""
        registry.register(self)

    def received(self, topic: str) -> None:
        """Count one record of ``topic`` received."""
        self._received[topic] = self._received.get(topic, 0) + 1

    def handled(self, topic: str, seconds: float) -> None:
        """Add one record of ``topic`` that took ``seconds`` to handle to the histogram."""
        counts = self._handled.get(topic)
        if counts is None:
            counts = self._handled[topic] = [0] * (len(self._bounds) + 2)
        counts[bisect_left(self._bounds, seconds)] += 1  # the first bucket whose bound is >= seconds ("le")
        counts[-1] += seconds

    def collect(self) -> Iterator[Metric]:
        """The two metric families as they stand (called by the registry on every scrape)."""
        received = CounterMetricFamily(self._names[0], "Records received, by topic.", labels=["topic"])
        for topic, count in list(self._received.items()):
            received.add_metric([topic], count)
        yield received
        handled = HistogramMetricFamily(self._names[1], "Time spent handling one record, by topic.", labels=["topic"])
        for topic, counts in list(self._handled.items()):
            counts = counts[:]  # one consistent copy while the loop goes on
            cumulative = list(itertools.accumulate(counts[:-1]))
            buckets = [(floatToGoString(b), c) for b, c in zip(self._bounds, cumulative, strict=False)]
            handled.add_metric([topic], [*buckets, ("+Inf", cumulative[-1])], counts[-1])
        yield handled


@functools.lru_cache(maxsize=4096)
def labelled(metric: Any, *values: str) -> Any:
    """``metric.labels(*values)``, cached: prometheus' own lookup validates and locks on every call,
    which is a measurable part of a record's cost on the hot path."""
    return metric.labels(*values)


def tap_published(engine: Any, observe: Callable[[str, dict[str, Any]], None]) -> None:
    """Call ``observe(topic, record)`` after each record ``engine`` publishes (metrics from outputs).

    The engine stays pure: its publisher is wrapped, nothing inside the engine changes.
    """
    publish = engine.publisher.publish

    def tapped(topic: str, record: dict[str, Any], *, key: str | None = None) -> None:
        publish(topic, record, key=key)
        observe(topic, record)

    engine.publisher.publish = tapped


def one_hot(name: str, doc: str, label: str, values: Iterable[str], current: str | None) -> GaugeMetricFamily:
    """A gauge with one series per value of ``label``: 1 for ``current``, 0 for the others (states, labels)."""
    family = GaugeMetricFamily(name, doc, labels=[label])
    for value in values:
        family.add_metric([value], 1.0 if value == current else 0.0)
    return family
