"""The consumer loop's own record metrics export what prometheus_client's counter and histogram would."""

from __future__ import annotations

import random

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from quorum_common.runtime.metrics import _LATENCY_BUCKETS, HandledRecords


def _samples(registry: CollectorRegistry) -> set[str]:
    """The exposition's sample lines, without comments and ``_created`` series."""
    return {line for line in generate_latest(registry).decode().splitlines()
            if line and not line.startswith("#") and "_created" not in line}


def test_handled_records_expose_the_series_of_a_prometheus_counter_and_histogram() -> None:
    rng = random.Random(3)
    ours, reference = CollectorRegistry(), CollectorRegistry()
    records = HandledRecords("quorum_probe", ours)
    received = Counter("quorum_probe_messages_in_total", "Records received, by topic.", ["topic"], registry=reference)
    handled = Histogram("quorum_probe_handler_duration_seconds", "Time spent handling one record, by topic.",
                        ["topic"], registry=reference, buckets=_LATENCY_BUCKETS)
    durations = [*_LATENCY_BUCKETS, 0.0, 5.0]  # every bound itself ("le" counts it), below and above them all
    durations += [rng.choice((1e-5, 1e-3, 0.1)) * rng.random() * 10 for _ in range(500)]
    for i, seconds in enumerate(durations):
        topic = ("md.bars", "signals.raw", "sys.clock")[i % 3]
        records.received(topic)
        received.labels(topic).inc()
        if topic != "sys.clock":  # a topic received but never handled has no histogram series
            records.handled(topic, seconds)
            handled.labels(topic).observe(seconds)
    assert _samples(ours) == _samples(reference)
    assert 'quorum_probe_handler_duration_seconds_bucket{le="0.0001",topic="md.bars"}' in " ".join(_samples(ours))
