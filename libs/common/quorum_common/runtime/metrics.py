"""Prometheus metrics of a service, named ``quorum_<service>_<what>_<unit>``.

Each service gets its own :class:`prometheus_client.CollectorRegistry`, so several services can
share a process (tests, the embedded desk) without their metric names colliding.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily

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
        self.messages_in = self.counter("messages_in_total", "Records received, by topic.", ["topic"])
        self.messages_out = self.counter("messages_out_total", "Records published, by topic.", ["topic"])
        self.dead_letters = self.counter(
            "dead_letters_total", "Records sent to a dead-letter topic, by topic and reason.", ["topic", "reason"]
        )
        self.handler_seconds = self.histogram(
            "handler_duration_seconds", "Time spent handling one record, by topic.", ["topic"]
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
