"""Comparing replayed decisions, orders, verdicts and fills with the recorded ones.

Records are aligned per topic by ``(ts_event, symbol, n)``: event time, instrument, and the rank
among records of the same time and instrument (sorted by side, layer, origin, event id). Aligning on
the instrument rather than on ids keeps a changed order "changed" in a what-if run even though its
derived ids (which hash its contents) changed too. Fields that measure wall-clock durations
(:data:`IGNORED_FIELDS`) are not compared: they are the only non-deterministic fields.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from quorum_common.phases import bar_time

from quorum_desk.replay_window import EventWindow, format_ns

COMPARED: tuple[str, ...] = ("signals.decisions", "orders.proposed", "risk.decisions", "orders.approved", "exec.fills")
"""Compared topics, in pipeline order (the tie-break of the first divergence at one event time)."""
IGNORED_FIELDS = frozenset({"solve_ms", "check_latency_ns"})
"""Wall-clock measurements carried in records; never part of a decision."""

AlignKey = tuple[int, str, int]


@dataclass(frozen=True)
class Difference:
    """One record that differs between the recording and the replay."""

    topic: str
    ts_event: int
    symbol: str
    kind: str
    """``changed``, ``added`` (only in the replay) or ``removed`` (only in the recording)."""
    recorded: dict[str, Any] | None
    replayed: dict[str, Any] | None
    fields: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    """Changed fields: name → (recorded value, replayed value)."""

    @property
    def correlation_id(self) -> str | None:
        """The recorded record's correlation id (the replayed one's when there is no recorded record)."""
        record = self.recorded or self.replayed or {}
        return record.get("correlation_id")

    def sort_key(self) -> tuple[int, int, str]:
        """Event time, then pipeline position of the topic, then instrument."""
        rank = COMPARED.index(self.topic) if self.topic in COMPARED else len(COMPARED)
        return (self.ts_event, rank, self.symbol)

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {"topic": self.topic, "ts_event": self.ts_event, "ts_event_iso": format_ns(self.ts_event),
                "symbol": self.symbol, "kind": self.kind, "correlation_id": self.correlation_id,
                "replayed_correlation_id": (self.replayed or {}).get("correlation_id"),
                "fields": {k: {"recorded": a, "replayed": b} for k, (a, b) in self.fields.items()},
                "recorded": self.recorded, "replayed": self.replayed}


@dataclass
class TopicCounts:
    """How the records of one topic compared."""

    recorded: int = 0
    replayed: int = 0
    same: int = 0
    changed: int = 0
    added: int = 0
    removed: int = 0


@dataclass
class Comparison:
    """Every difference inside the window, oldest first, with counts per topic."""

    differences: list[Difference]
    counts: dict[str, TopicCounts]

    @property
    def first(self) -> Difference | None:
        """The first divergence (``None`` when the replay reproduced the recording)."""
        return self.differences[0] if self.differences else None

    @property
    def diverged(self) -> bool:
        """Whether anything differs."""
        return bool(self.differences)


def _symbol(record: dict[str, Any]) -> str:
    return str(record.get("symbol") or "")


def _rank_key(record: dict[str, Any]) -> tuple[str, ...]:
    return tuple(str(record.get(f) or "") for f in ("side", "layer", "origin", "event_id"))


def align(records: Iterable[dict[str, Any]]) -> dict[AlignKey, dict[str, Any]]:
    """Records by ``(ts_event, symbol, rank among records of that time and symbol)``."""
    groups: dict[tuple[int, str], list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        groups[(int(record["ts_event"]), _symbol(record))].append(record)
    out: dict[AlignKey, dict[str, Any]] = {}
    for (ts, symbol), group in groups.items():
        for n, record in enumerate(sorted(group, key=_rank_key)):
            out[(ts, symbol, n)] = record
    return out


def changed_fields(recorded: dict[str, Any], replayed: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Fields whose values differ (in either record), except :data:`IGNORED_FIELDS`."""
    names = [*recorded, *(k for k in replayed if k not in recorded)]
    return {k: (recorded.get(k), replayed.get(k)) for k in names
            if k not in IGNORED_FIELDS and recorded.get(k) != replayed.get(k)}


def compare_topic(topic: str, recorded: list[dict[str, Any]], replayed: list[dict[str, Any]],
                  window: EventWindow) -> tuple[list[Difference], TopicCounts]:
    """Differences of one topic inside ``window``."""
    rec = align(r for r in recorded if window.contains(int(r["ts_event"])))
    rep = align(r for r in replayed if window.contains(int(r["ts_event"])))
    counts = TopicCounts(recorded=len(rec), replayed=len(rep))
    diffs = []
    for key in sorted(rec.keys() | rep.keys()):
        a, b = rec.get(key), rep.get(key)
        if a is None or b is None:
            kind = "added" if a is None else "removed"
            setattr(counts, kind, getattr(counts, kind) + 1)
            diffs.append(Difference(topic, key[0], key[1], kind, a, b))
            continue
        fields = changed_fields(a, b)
        if fields:
            counts.changed += 1
            diffs.append(Difference(topic, key[0], key[1], "changed", a, b, fields))
        else:
            counts.same += 1
    return diffs, counts


def compare(recorded: dict[str, list[dict[str, Any]]], replayed: dict[str, list[dict[str, Any]]],
            window: EventWindow, topics: tuple[str, ...] = COMPARED) -> Comparison:
    """Compare every topic of ``topics`` inside ``window``."""
    diffs: list[Difference] = []
    counts: dict[str, TopicCounts] = {}
    for topic in topics:
        d, counts[topic] = compare_topic(topic, recorded.get(topic, []), replayed.get(topic, []), window)
        diffs.extend(d)
    diffs.sort(key=Difference.sort_key)
    return Comparison(diffs, counts)


def inputs_behind(diff: Difference, inputs: dict[str, list[dict[str, Any]]],
                  recorded: dict[str, list[dict[str, Any]]], replayed: dict[str, list[dict[str, Any]]],
                  commands: list[tuple[int, dict[str, Any]]] = (), last_commands: int = 3) -> dict[str, Any]:
    """What led to ``diff``: the bars of its instrument and bar time, the decision behind it (with its
    vote breakdown), the recorded order of the same client order id, and the latest control commands
    released (``commands``: (event time of the releasing tick, command)) by then."""
    t = bar_time(diff.ts_event)
    symbol = diff.symbol
    record = diff.recorded or diff.replayed or {}
    out: dict[str, Any] = {
        "bar_time": t, "bar_time_iso": format_ns(t),
        "bars": [b for b in inputs.get("md.bars", []) if b.get("symbol") == symbol and int(b["ts_event"]) == t],
    }
    decision_id = record.get("decision_id")
    for side, records in (("recorded", recorded), ("replayed", replayed)):
        decisions = [d for d in records.get("signals.decisions", [])
                     if (d.get("symbol") == symbol and bar_time(int(d["ts_event"])) == t)
                     or (decision_id and d.get("decision_id") == decision_id)]
        if decisions and diff.topic != "signals.decisions":
            out[f"{side}_decision"] = decisions[-1]
    coid = record.get("client_order_id")
    if coid and diff.topic != "orders.proposed":
        orders = [o for o in recorded.get("orders.proposed", []) if o.get("client_order_id") == coid]
        if orders:
            out["recorded_order"] = orders[0]
    cmds = [c for released, c in commands if released <= diff.ts_event]
    out["control_commands"] = cmds[-last_commands:] if last_commands else []
    return out
