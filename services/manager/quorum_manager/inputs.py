"""The manager's non-signal inputs, kept by event time so a vote at ``t`` sees only data with ``ts_event <= t``.

Over Kafka the inputs of different topics interleave freely (a regime update of ``t + 1`` may arrive
before the clock tick of ``t``), so every input is stored in a per-key history ordered by event time
and looked up "as of" the bar being voted on.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from quorum_manager.ensemble import Vote

T = TypeVar("T")
RETURN_TARGETS = frozenset({"log_return", "return", "returns", "pct_return"})
"""Forecast targets read as returns; a ``close`` target is turned into a return with reference_price."""


class History(Generic[T]):
    """Items per key in event-time order, with as-of lookups."""

    def __init__(self) -> None:
        self._items: dict[str, list[tuple[int, int, T]]] = {}
        self._seq = itertools.count()

    def add(self, key: str, ts: int, item: T) -> None:
        """Store ``item`` of event time ``ts`` (arrival order breaks ties: the later one wins)."""
        bisect.insort(self._items.setdefault(key, []), (ts, next(self._seq), item))

    def window(self, key: str, t: int, max_age: int) -> list[tuple[int, T]]:
        """Items with ``t - max_age <= ts <= t``, oldest first."""
        items = self._items.get(key, [])
        hi = bisect.bisect_right(items, (t, math.inf))
        lo = bisect.bisect_left(items, (t - max_age, -1))
        return [(ts, item) for ts, _, item in items[lo:hi]]

    def latest(self, key: str, t: int, max_age: int | None = None) -> T | None:
        """The latest item with ``ts <= t`` (and not older than ``max_age``), or None."""
        items = self._items.get(key, [])
        hi = bisect.bisect_right(items, (t, math.inf))
        if hi == 0:
            return None
        ts, _, item = items[hi - 1]
        return item if max_age is None or t - ts <= max_age else None

    def prune(self, before: int) -> None:
        """Forget items older than ``before``, keeping the latest of them (as-of lookups still see it)."""
        for items in self._items.values():
            cut = bisect.bisect_left(items, (before, -1))
            if cut > 1:
                del items[: cut - 1]


def expected_return(forecast: dict[str, Any], value: float) -> float | None:
    """A forecast value read as a return, or None when the target cannot be read as one."""
    target = str(forecast["target"]).lower()
    if target in RETURN_TARGETS:
        return value
    ref = forecast.get("reference_price")
    if target == "close" and ref and ref > 0:
        return value / ref - 1.0
    return None


def forecast_vote(forecast: dict[str, Any], scale: float) -> Vote:
    """The ML_FORECAST vote of a forecast: score ``tanh(scale * expected return)``.

    Confidence is the share of the forecast's quantiles that agree in sign with the point forecast
    (all of q10, q50, q90 above zero: 1.0); 0.5 without quantiles; 0 for a flat forecast.
    """
    er = expected_return(forecast, forecast["point_forecast"])
    if er is None or not math.isfinite(er):
        raise ValueError(f"target {forecast['target']!r} cannot be read as a return")
    quantiles = [expected_return(forecast, q["value"]) for q in forecast.get("quantiles") or []]
    if er == 0:
        confidence = 0.0
    elif quantiles:
        confidence = sum(1 for q in quantiles if q is not None and q * er > 0) / len(quantiles)
    else:
        confidence = 0.5
    return Vote(f"forecast.{forecast['model']}", "ML_FORECAST", math.tanh(scale * er), confidence,
                forecast["event_id"], forecast["ts_event"])


def sentiment_vote(scored: Sequence[tuple[int, dict[str, Any]]]) -> Vote:
    """The SENTIMENT vote of the headlines scored in the window: confidence-weighted mean score, mean confidence."""
    records = [rec for _, rec in scored]
    total_conf = sum(r["confidence"] for r in records)
    if total_conf > 0:
        score = sum(r["score"] * r["confidence"] for r in records) / total_conf
    else:
        score = sum(r["score"] for r in records) / len(records)
    last = records[-1]
    return Vote(f"sentiment.{last['model']}", "SENTIMENT", max(-1.0, min(1.0, score)), total_conf / len(records),
                last["event_id"], last["ts_event"])
