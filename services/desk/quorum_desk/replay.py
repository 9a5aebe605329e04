"""Topic replay for incident analysis: re-drive a recorded window through a fresh, isolated desk.

``quorum-desk replay --prefix P [--from T] [--to T] ...`` (wired by :func:`add_replay_arguments` and
:func:`cmd_replay`):

1. **reads** the recorded topics under prefix ``P`` from Kafka, read-only (assigned partitions, no
   consumer-group commits): the inputs ``md.bars``, ``md.ticks``, ``md.book``, ``news.headlines``,
   ``control.commands``, ``sys.clock`` and the outputs compared (:data:`~quorum_desk.replay_compare.COMPARED`);
2. **re-drives** the inputs through every consumer service of the desk on a fresh lockstep
   in-process bus, in their recorded order (event time, then catalog order, key and offset — the
   order the ingest source published them in). Nothing is written to Kafka, so the live topics are
   never touched. A control command is re-driven right before the clock tick that released it in the
   recording (the first tick written after it, by Kafka timestamp: the admin API stamps commands
   with the wall clock, so their ``ts_event`` says nothing about where they fell in a historical
   replay). Commands issued by the desk itself (the critic's tightenings) are outputs, re-issued by
   the replayed critic, and are not re-driven;
3. **compares** the replayed decisions, proposed orders, risk verdicts, approved orders and fills
   with the recorded ones inside the window and reports the first divergence with its correlation
   id, the fields that differ and the inputs behind it (text, and JSON with ``--json``);
4. optionally **changes the configuration** (``--mandate-set``, ``--set``: a what-if) and reports the
   difference, and **exports** the window to Avro container files (``--export DIR``).

Windows. ``--from`` / ``--to`` are **event time** (``ts_event``; a bare date covers that whole UTC
day). ``--wall-from`` / ``--wall-to`` are **wall-clock** Kafka timestamps of the recording: the input
records written in that interval (``offsets_for_times``, both ends inclusive) define the event-time window. Without any
the whole recording is the window.

Warm-up. The engines carry history (indicators, the regime HMM, the optimiser's look-back): a replay
that starts cold at the window's start diverges for that reason alone. By default (``--warmup all``)
every recorded input from the first one up to the window's end is re-driven, and only the window is
compared: exact, at the cost of replaying the history. ``--warmup N`` (days) starts N days before the
window (faster; exact only once the engines' memory is shorter than N days); ``--warmup none``
starts at the window (differences then show the effect of the missing history).

Exit status: 0 no divergence, 1 divergence, 2 invalid arguments or an unreadable recording.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import traceback
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from quorum_common.bus.inprocess import InProcessBus
from quorum_common.bus.lockstep import CLOCK_TOPIC
from quorum_common.engine import SourceItem
from quorum_common.runtime.config import ConfigError
from quorum_common.runtime.service import wire_inprocess
from quorum_common.schemas import default_catalog
from quorum_critic.engine import CRITIC_ID

from quorum_desk.composition import CONSUMERS
from quorum_desk.engine import service_settings
from quorum_desk.kafka_target import add_kafka_arguments, kafka_target
from quorum_desk.replay_compare import COMPARED, compare, inputs_behind
from quorum_desk.replay_config import ReplayConfig
from quorum_desk.replay_export import export_window
from quorum_desk.replay_read import Recorded, ReplayReadError, read_recorded
from quorum_desk.replay_report import ReplayedDesk, ReplayReport
from quorum_desk.replay_window import EventWindow, ReplayInputError, format_ns, parse_time, parse_warmup

INPUT_TOPICS: tuple[str, ...] = ("md.bars", "md.ticks", "md.book", "news.headlines", "control.commands", "sys.clock")
"""Recorded topics the desk's consumer services are re-driven with."""
COMMANDS = "control.commands"
TIMED_INPUTS = tuple(t for t in INPUT_TOPICS if t != COMMANDS)
"""The inputs whose event times span a window: a command carries the wall clock of its admin API request (the
replay places it by the tick that released it), so it would stretch a 2006 window to the day it was sent."""
DERIVED_COMMAND_ISSUERS = frozenset({CRITIC_ID})
"""Issuers of control commands that the desk itself produces (re-issued by the replay, not re-driven)."""


@dataclass
class Recording:
    """The recorded records of a prefix, by logical topic."""

    prefix: str
    records: dict[str, list[Recorded]]
    undecodable: dict[str, int] = field(default_factory=dict)
    duplicates: dict[str, int] = field(default_factory=dict)

    def values(self, topic: str, window: EventWindow | None = None) -> list[dict[str, Any]]:
        """Record values of ``topic`` (only those inside ``window`` when given), in recorded order."""
        return [r.value for r in self.records.get(topic, []) if window is None or window.contains(r.ts_event)]

    def input_span(self) -> tuple[int, int]:
        """Event-time span of the recorded inputs (:data:`TIMED_INPUTS`); ``ReplayInputError`` when there are none."""
        times = [r.ts_event for t in TIMED_INPUTS for r in self.records.get(t, [])]
        if not times:
            raise ReplayInputError(f"--prefix {self.prefix!r}: the recording has no input records")
        return min(times), max(times)


def load_recording(client_config: dict[str, str], prefix: str, topics: tuple[str, ...] = (*INPUT_TOPICS, *COMPARED),
                   wall_from_ms: int | None = None, wall_to_ms: int | None = None) -> Recording:
    """Read ``topics`` under ``prefix`` (optionally only what was written in a wall-clock interval)."""
    read = read_recorded(client_config, prefix, list(topics), wall_from_ms=wall_from_ms, wall_to_ms=wall_to_ms)
    return Recording(prefix, read.records, read.undecodable, read.duplicates)


_EXCLUSIVE = "--from/--to and --wall-from/--wall-to are exclusive: give one kind of window"


def check_window_arguments(start: str | None, end: str | None, wall_from: str | None, wall_to: str | None,
                           warmup: str | None) -> None:
    """Refuse bad window flags (format, order, both kinds) with :class:`ReplayInputError` before the recording is
    read, which may take a while, or fail on a broker that is not there."""
    if (start or end) and (wall_from or wall_to):
        raise ReplayInputError(_EXCLUSIVE)
    for first, last, names in ((start, end, ("--from", "--to")), (wall_from, wall_to, ("--wall-from", "--wall-to"))):
        low = parse_time(first, names[0]) if first else None
        high = parse_time(last, names[1], end=True) if last else None
        if low is not None and high is not None and high < low:
            raise ReplayInputError(f"{names[1]} {last} is before {names[0]} {first}")
    parse_warmup(warmup)


def resolve_window(recording: Recording, start: str | None = None, end: str | None = None,
                   warmup: str | None = None, wall_span: tuple[int, int] | None = None) -> EventWindow:
    """The event-time window from ``--from``/``--to`` (default: the recording's input span) or a wall-clock span."""
    warmup_ns = parse_warmup(warmup)
    if wall_span is not None:
        if start or end:
            raise ReplayInputError(_EXCLUSIVE)
        return EventWindow(wall_span[0], wall_span[1], warmup_ns)
    first, last = recording.input_span()
    return EventWindow(parse_time(start, "--from") if start else first,
                       parse_time(end, "--to", end=True) if end else last, warmup_ns)


def wall_window_span(client_config: dict[str, str], prefix: str, wall_from: str | None,
                     wall_to: str | None) -> tuple[int, int]:
    """Event-time span of the inputs (:data:`TIMED_INPUTS`) written in the wall-clock interval ``[wall_from, wall_to]``
    (Kafka timestamps have ms resolution; a bare date as ``wall_to`` covers that whole day)."""
    from_ms = parse_time(wall_from, "--wall-from") // 10**6 if wall_from else None
    to_ms = parse_time(wall_to, "--wall-to", end=True) // 10**6 + 1 if wall_to else None
    part = load_recording(client_config, prefix, TIMED_INPUTS, from_ms, to_ms)
    times = [r.ts_event for t in TIMED_INPUTS for r in part.records[t]]
    if not times:
        raise ReplayInputError(f"--wall-from/--wall-to: no input of {prefix!r} was written between "
                               f"{wall_from or 'the start'} and {wall_to or 'the end'}")
    return min(times), max(times)


def replay_items(recording: Recording, window: EventWindow) -> tuple[list[SourceItem], list[tuple[int, dict]]]:
    """The inputs to re-drive, in recorded order, and the external commands with the event time of the
    clock tick that released them.

    Market data and clock ticks are ordered by event time, catalog order, key and offset (the order
    the ingest source published them in). A control command reached the lockstep consumers at the first
    clock tick they read after it was written, whatever its ``ts_event`` (the admin API stamps the wall
    clock): it is placed right before the first recorded tick with a later Kafka timestamp, and fed
    when that tick is. A command written after the last tick was never released and is not fed.
    Commands the desk issued itself (:data:`DERIVED_COMMAND_ISSUERS`) are left out.
    """
    rank = {t.name: i for i, t in enumerate(default_catalog())}
    stream = sorted((r for t in INPUT_TOPICS if t != COMMANDS for r in recording.records.get(t, [])),
                    key=lambda r: (r.ts_event, rank[r.topic], r.key or "", r.partition, r.offset))
    ticks = [r for r in stream if r.topic == CLOCK_TOPIC]
    released: dict[int, list[Recorded]] = defaultdict(list)
    external = [r for r in recording.records.get(COMMANDS, [])
                if r.value.get("issued_by") not in DERIVED_COMMAND_ISSUERS]
    for cmd in sorted(external, key=lambda r: (r.kafka_ts_ms, r.partition, r.offset)):
        index = next((i for i, tick in enumerate(ticks) if tick.kafka_ts_ms > cmd.kafka_ts_ms), None)
        if index is not None:
            released[index].append(cmd)
    feed: list[SourceItem] = []
    placed: list[tuple[int, dict]] = []
    tick_index = -1
    for r in stream:
        if r.topic == CLOCK_TOPIC:
            tick_index += 1
            if window.feeds(r.ts_event):
                feed.extend((c.topic, c.key, c.value) for c in released.get(tick_index, []))
                placed.extend((r.ts_event, c.value) for c in released.get(tick_index, []))
        if window.feeds(r.ts_event):
            feed.append((r.topic, r.key, r.value))
    return feed, placed


def run_desk(feed: list[SourceItem], overrides: dict[str, dict[str, Any]],
             topics: tuple[str, ...] = COMPARED) -> ReplayedDesk:
    """Every consumer service on a fresh lockstep in-process bus, fed ``feed`` as one source: every
    record's phase is that of the last tick before it in the feed, as it was in the recording (a
    command placed before a tick with a later ``ts_event`` is the source's only pending record, so it
    is delivered at once and released to the engines by that tick)."""
    bus = InProcessBus(lockstep=True, trace=False)
    outputs: dict[str, list[dict[str, Any]]] = {t: [] for t in topics}
    bus.tap(lambda m: outputs[m.topic].append(m.value) if m.topic in outputs else None)
    for spec in CONSUMERS:
        wire_inprocess(bus, spec, service_settings(spec, overrides))
    bus.add_source("replay", iter(feed))
    started = time.perf_counter()
    events = bus.run()
    return ReplayedDesk(outputs, events, len(bus.dead_letters), time.perf_counter() - started)


def replay(client_config: dict[str, str], prefix: str, *, start: str | None = None, end: str | None = None,
           wall_from: str | None = None, wall_to: str | None = None, warmup: str | None = None,
           config: ReplayConfig | None = None, export_dir: Path | None = None,
           recording: Recording | None = None) -> ReplayReport:
    """Replay a window of the recording under ``prefix`` through a fresh desk and compare (see the module doc)."""
    config = config or ReplayConfig()
    recording = recording or load_recording(client_config, prefix)
    span = wall_window_span(client_config, prefix, wall_from, wall_to) if (wall_from or wall_to) else None
    window = resolve_window(recording, start, end, warmup, span)
    feed, commands = replay_items(recording, window)
    if not any(topic == CLOCK_TOPIC for topic, _key, _value in feed):
        raise ReplayInputError(f"window {format_ns(window.start)} .. {format_ns(window.end)}: no recorded input")
    with tempfile.TemporaryDirectory(prefix="quorum-replay-") as tmp:
        replayed = run_desk(feed, config.overrides(Path(tmp)))
    recorded = {t: recording.values(t, window) for t in COMPARED}
    comparison = compare(recorded, replayed.outputs, window)
    inputs: dict[str, list[dict[str, Any]]] = {t: [] for t in INPUT_TOPICS}
    for topic, _key, value in feed:
        inputs[topic].append(value)
    fed = {t: len(v) for t, v in inputs.items()}
    behind = None
    if comparison.first is not None:
        behind = inputs_behind(comparison.first, inputs, recorded, replayed.outputs, commands)
    report = ReplayReport(prefix, window, config, comparison, replayed, fed, behind,
                          {"undecodable": recording.undecodable, "duplicates": recording.duplicates})
    if export_dir is not None:
        export_recording(recording, window, Path(export_dir), replayed=replayed.outputs)
    return report


def export_recording(recording: Recording, window: EventWindow, out_dir: Path,
                     replayed: dict[str, list[dict[str, Any]]] | None = None) -> dict[str, Any]:
    """Export the recorded inputs and compared outputs inside ``window`` (and the replayed outputs, under
    ``replayed/``) to Avro container files; return the manifest."""
    meta = {"prefix": recording.prefix, "window": window.describe(), "source": "recorded"}
    records = {t: recording.values(t, window) for t in (*INPUT_TOPICS, *COMPARED)}
    manifest = export_window(out_dir, records, meta=meta)
    if replayed is not None:
        inside = {t: [r for r in replayed.get(t, []) if window.contains(int(r["ts_event"]))] for t in COMPARED}
        export_window(Path(out_dir) / "replayed", inside, meta={**meta, "source": "replayed"})
    return manifest


def add_replay_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the replay options to ``parser`` (e.g. a ``replay`` sub-parser)."""
    add_kafka_arguments(parser, "the recorded desk (read only)")
    parser.add_argument("--from", dest="start", help="window start, event time: YYYY-MM-DD, ISO date-time or ns")
    parser.add_argument("--to", dest="end", help="window end, event time, inclusive (a date covers the whole day)")
    parser.add_argument("--wall-from", help="window start, wall-clock time the records were written (Kafka timestamp)")
    parser.add_argument("--wall-to", help="window end, wall-clock time, inclusive (a date covers the whole day)")
    parser.add_argument("--warmup", default="all",
                        help="inputs re-driven before the window: 'all' (default), 'none' or a number of days")
    parser.add_argument("--mandate", help="the mandate file the recorded desk ran with (default: packaged)")
    parser.add_argument("--mandate-set", action="append", metavar="FIELD=VALUE",
                        help="what-if: change a mandate field, e.g. max_drawdown=0.05 (repeatable)")
    parser.add_argument("--set", dest="settings_set", action="append", metavar="SERVICE.FIELD=VALUE",
                        help="a settings field of a re-run service, e.g. risk.volume_window=10 (repeatable)")
    parser.add_argument("--json", dest="json_path",
                        help="also write the full report as JSON to this file ('-': stdout)")
    parser.add_argument("--export", dest="export_dir", help="export the window to Avro container files in this folder")
    parser.add_argument("--export-only", action="store_true", help="only export the window, do not replay")
    return parser


def cmd_replay(args: argparse.Namespace) -> int:
    """Run the replay described by ``args``; print the summary; 0 same, 1 diverged, 2 error."""
    try:
        check_window_arguments(args.start, args.end, args.wall_from, args.wall_to, args.warmup)
        config = ReplayConfig.from_args(args.mandate, args.mandate_set, args.settings_set)
        client, prefix = kafka_target(args)
        recording = load_recording(client, prefix)
        if args.export_only:
            if not args.export_dir:
                raise ReplayInputError("--export-only needs --export DIR")
            span = wall_window_span(client, prefix, args.wall_from, args.wall_to) if (
                args.wall_from or args.wall_to) else None
            window = resolve_window(recording, args.start, args.end, args.warmup, span)
            manifest = export_recording(recording, window, Path(args.export_dir))
            print(f"exported {sum(t['records'] for t in manifest['topics'].values())} records to {args.export_dir}")
            return 0
        report = replay(client, prefix, start=args.start, end=args.end, wall_from=args.wall_from,
                        wall_to=args.wall_to, warmup=args.warmup, config=config,
                        export_dir=Path(args.export_dir) if args.export_dir else None, recording=recording)
    except (ReplayInputError, ConfigError, ReplayReadError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception:  # exit status 1 means "diverged": an unexpected failure must not look like one
        traceback.print_exc()
        return 2
    print(report.to_text())
    if args.json_path:
        text = json.dumps(report.to_json(), indent=2, default=str)
        if args.json_path == "-":
            print(text)
        else:
            Path(args.json_path).write_text(text)
    return 1 if report.diverged else 0


def main(argv: list[str] | None = None) -> int:
    """``python -m quorum_desk.replay ...`` until the lead wires ``quorum-desk replay``."""
    parser = argparse.ArgumentParser(prog="quorum-desk replay", description=__doc__.splitlines()[0])
    return cmd_replay(add_replay_arguments(parser).parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
