"""Exporting a replay window to Avro object container files for offline analysis.

One file per topic (``<topic>.avro``, writer schema = the topic's value schema from the catalog,
codec deflate), in the recorded order, and ``manifest.json`` naming the window, the recording's
prefix and, per topic, the file, record count, schema name and CRC-64-AVRO fingerprint.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from fastavro import writer
from quorum_common.schemas import TopicCatalog, default_catalog

MANIFEST = "manifest.json"


def export_window(out_dir: Path, records: Mapping[str, Iterable[dict[str, Any]]], *,
                  meta: dict[str, Any] | None = None, catalog: TopicCatalog | None = None,
                  codec: str = "deflate") -> dict[str, Any]:
    """Write ``records`` (logical topic → records) under ``out_dir``; return the manifest written."""
    catalog = catalog or default_catalog()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    topics: dict[str, Any] = {}
    for topic, items in records.items():
        schema = catalog.schema_for(topic)
        rows = list(items)
        path = out_dir / f"{topic}.avro"
        with path.open("wb") as fh:
            writer(fh, schema.parsed, rows, codec=codec, metadata={"quorum.topic": topic})
        topics[topic] = {"file": path.name, "records": len(rows), "schema": schema.name,
                         "fingerprint": schema.fingerprint.hex(),
                         "ts_event_min": min((int(r["ts_event"]) for r in rows), default=None),
                         "ts_event_max": max((int(r["ts_event"]) for r in rows), default=None)}
    manifest = {**(meta or {}), "codec": codec, "topics": topics}
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str))
    return manifest
