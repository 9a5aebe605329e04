"""The dead letters of an embedded run, written with its report: nothing refused is lost when the process ends.

A Kafka desk keeps what it refuses on ``dlq.<topic>`` (``quorum-desk dlq list``); the embedded run keeps it in memory
(:attr:`~quorum_common.bus.inprocess.InProcessBus.dead_letters`), so the report writes every letter to
``dead_letters.jsonl`` (one JSON object a line: topic, key, reason, error, service and the record as far as it
decodes; a NaN as ``"NaN"``), counts them by topic and reason in ``metrics.json`` and lists the first :data:`LISTED`
on the page.
"""

from __future__ import annotations

import html
import json
import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from quorum_common.bus.deadletter import DeadLetter, readable_payload
from quorum_common.bus.topic_codec import TopicCodec
from quorum_common.event_dates import utc_date

FILE = "dead_letters.jsonl"
LISTED = 20
"""Letters the page lists (the file holds them all)."""


def write_dead_letters(letters: Sequence[DeadLetter], out_dir: Path,
                       codec: TopicCodec | None = None) -> list[dict[str, Any]]:
    """Write ``dead_letters.jsonl`` in ``out_dir`` (none when there is no letter: an earlier run's of the same run id
    is removed); the letters as written."""
    if not letters:
        (out_dir / FILE).unlink(missing_ok=True)
        return []
    codec = codec or TopicCodec()
    rows = [{"topic": x.topic, "key": x.key, "reason": x.reason, "error": x.error, "service": x.service,
             "record": readable_payload(codec, x.topic, x.payload)} for x in letters]
    with (out_dir / FILE).open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(_strict(row), default=str, sort_keys=True, allow_nan=False) + "\n")
    return rows


def _strict(value: Any) -> Any:
    """``value`` with every NaN or infinite float as its name (``"NaN"``, ``"Infinity"``, ``"-Infinity"``): a refused
    bar often holds one, and JSON has no such number (strict readers such as jq refuse the file otherwise)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_strict(v) for v in value]
    return value


def letters_metrics(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """``metrics.json``'s ``dead_letters``: the count, the count by ``<topic>: <reason>`` and the file (None: none)."""
    by = Counter(f"{row['topic']}: {row['reason']}" for row in rows)
    return {"count": len(rows), "by_topic_and_reason": dict(by.most_common()), "file": FILE if rows else None}


def letters_html(rows: list[dict[str, Any]]) -> str:
    """The page's dead-letter section: the counts and the first :data:`LISTED` letters."""
    if not rows:
        return "<h2>Dead letters</h2><p>none: every record was accepted.</p>"
    counts = "".join(f"<li>{n:,} {html.escape(what)}</li>"
                     for what, n in letters_metrics(rows)["by_topic_and_reason"].items())
    listed = "".join(_row(row) for row in rows[:LISTED])
    more = f"<p>{len(rows) - LISTED:,} more in {FILE}.</p>" if len(rows) > LISTED else ""
    return f"""<h2>Dead letters</h2>
<p>Records refused, kept with the reason (every one in <a href="{FILE}">{FILE}</a>):</p><ul>{counts}</ul>
<table><tr><th>date</th><th>topic</th><th>symbol</th><th>reason</th><th>refused by</th><th>error</th></tr>
{listed}</table>{more}"""


def _row(row: dict[str, Any]) -> str:
    record = row["record"]
    ts = record.get("ts_event")
    when = utc_date(ts).isoformat() if isinstance(ts, int) else ""
    cells = (when, row["topic"], str(record.get("symbol", row["key"] or "")), row["reason"], row["service"],
             row["error"])
    return "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>"
