"""The outcome of a replay, as JSON and as readable text."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from quorum_desk.replay_compare import Comparison
from quorum_desk.replay_config import ReplayConfig
from quorum_desk.replay_window import EventWindow, format_ns


@dataclass
class ReplayedDesk:
    """What the replayed desk published."""

    outputs: dict[str, list[dict[str, Any]]]
    events: int
    dead_letters: int
    wall_s: float


@dataclass
class ReplayReport:
    """The outcome of a replay: window, configuration, comparison and the first divergence."""

    prefix: str
    window: EventWindow
    config: ReplayConfig
    comparison: Comparison
    replayed: ReplayedDesk
    fed: dict[str, int]
    behind: dict[str, Any] | None
    read_notes: dict[str, dict[str, int]]

    @property
    def diverged(self) -> bool:
        """Whether the replay differs from the recording inside the window."""
        return self.comparison.diverged

    def to_json(self, max_differences: int = 20) -> dict[str, Any]:
        """JSON form (every value JSON-serialisable with ``default=str``)."""
        first = self.comparison.first
        return {
            "prefix": self.prefix, "window": self.window.describe(), "config": self.config.describe(),
            "diverged": self.diverged, "inputs_redriven": self.fed, "events": self.replayed.events,
            "replay_wall_s": round(self.replayed.wall_s, 3), "dead_letters": self.replayed.dead_letters,
            "read": self.read_notes,
            "counts": {t: vars(c) for t, c in self.comparison.counts.items()},
            "first_divergence": None if first is None else {**first.to_json(), "inputs_behind": self.behind},
            "differences": [d.to_json() for d in self.comparison.differences[:max_differences]],
        }

    def to_text(self, max_differences: int = 5) -> str:
        """A readable summary."""
        w = self.window
        fed = ", ".join(f"{t} {n}" for t, n in self.fed.items() if n)
        warm = "all recorded history" if w.warmup_ns is None else f"from {format_ns(w.replay_from)}"
        lines = [f"Replay of {self.prefix or '(no prefix)'}: window {format_ns(w.start)} .. {format_ns(w.end)} "
                 f"(warm-up: {warm})",
                 f"inputs re-driven: {sum(self.fed.values())} ({fed})"
                 f"; {self.replayed.events} events in {self.replayed.wall_s:.1f} s",
                 f"configuration: {_describe_changes(self.config)}",
                 f"{'topic':<20}{'recorded':>9}{'replayed':>9}{'same':>7}{'changed':>8}{'added':>7}{'removed':>8}"]
        for topic, c in self.comparison.counts.items():
            lines.append(f"{topic:<20}{c.recorded:>9}{c.replayed:>9}{c.same:>7}{c.changed:>8}{c.added:>7}{c.removed:>8}")
        first = self.comparison.first
        if first is None:
            lines.append("No divergence: the replay reproduced every compared record inside the window.")
            return "\n".join(lines)
        lines.append(f"FIRST DIVERGENCE: {first.topic} at {format_ns(first.ts_event)}, {first.symbol or '-'}, "
                     f"{first.kind}; correlation id {first.correlation_id}")
        for name, (a, b) in list(first.fields.items())[:12]:
            lines.append(f"  {name}: recorded {_short(a)}  ->  replayed {_short(b)}")
        lines.extend(_behind_lines(self.behind or {}))
        more = self.comparison.differences[1:max_differences]
        if more:
            lines.append("next differences:")
            lines.extend(f"  {d.topic} at {format_ns(d.ts_event)} {d.symbol} {d.kind} {sorted(d.fields)[:6]}"
                         for d in more)
        return "\n".join(lines)


def _short(value: Any, width: int = 140) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def _describe_changes(config: ReplayConfig) -> str:
    changes = [f"mandate {k}={v}" for k, v in config.mandate_changes.items()]
    changes += [f"{s}.{f}={v}" for s, fields in config.settings.items() for f, v in fields.items()]
    return ("what-if: " + ", ".join(changes)) if changes else "as recorded (no change)"


def _behind_lines(behind: dict[str, Any]) -> list[str]:
    lines = ["inputs behind it:"]
    for bar in behind.get("bars", []):
        lines.append(f"  bar {bar.get('symbol')} {format_ns(int(bar['ts_event']))} open {bar.get('open')} "
                     f"high {bar.get('high')} low {bar.get('low')} close {bar.get('close')} volume {bar.get('volume')}")
    for side in ("recorded", "replayed"):
        d = behind.get(f"{side}_decision")
        if d:
            lines.append(f"  {side} decision {d.get('action')} score {d.get('combined_score')} "
                         f"(regime {d.get('regime_label')}): {_short(d.get('breakdown'), 200)}")
    order = behind.get("recorded_order")
    if order:
        lines.append(f"  recorded order {order.get('side')} {order.get('quantity')} {order.get('symbol')}: "
                     f"{order.get('reason')}")
    cmds = behind.get("control_commands") or []
    lines.append("  control commands before it: " + ("; ".join(
        f"{format_ns(int(c['ts_event']))} {c.get('command')} by {c.get('issued_by')}" for c in cmds) or "none"))
    return lines
