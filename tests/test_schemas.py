"""Every schema parses, documents every field and carries the envelope; the catalog is consistent."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from quorum_common.paths import SCHEMAS_DIR
from quorum_common.schemas import SchemaError, SchemaRegistry, TopicCatalog, load_schema_file

AVRO_FILES = sorted((SCHEMAS_DIR / "avro").glob("*.avsc"))
ENVELOPE = [("event_id", "string"), ("ts_event", "long"), ("ts_init", "long"), ("correlation_id", "string")]
# The brief's topic map: every one of these must be in the catalog.
REQUIRED_TOPICS = {
    "md.bars", "md.ticks", "md.book", "news.headlines", "alt.sentiment", "model.forecasts", "regime.state",
    "signals.raw", "signals.decisions", "mandate.compiled", "portfolio.targets", "portfolio.snapshots",
    "orders.proposed", "orders.approved", "risk.decisions", "exec.reports", "exec.fills", "control.commands",
    "control.state", "critic.reports", "sys.clock",
}


def _undocumented(node: object, path: str) -> list[str]:
    missing: list[str] = []
    if isinstance(node, list):
        for branch in node:
            missing += _undocumented(branch, path)
    elif isinstance(node, dict):
        if node.get("type") in ("record", "enum", "fixed") and not node.get("doc"):
            missing.append(f"{path} ({node.get('name')})")
        for field in node.get("fields", []):
            if not field.get("doc"):
                missing.append(f"{path}.{field['name']}")
            missing += _undocumented(field["type"], f"{path}.{field['name']}")
        for key in ("items", "values"):
            if key in node:
                missing += _undocumented(node[key], path)
    return missing


def test_there_is_one_file_per_record() -> None:
    assert len(AVRO_FILES) >= len(REQUIRED_TOPICS)
    registry = SchemaRegistry.from_dir(SCHEMAS_DIR / "avro")
    assert len(registry) == len(AVRO_FILES)
    for path in AVRO_FILES:
        assert registry.get(f"quorum.v1.{path.stem}").path == path, "file name must be the record name"


@pytest.mark.parametrize("path", AVRO_FILES, ids=lambda p: p.stem)
def test_schema_parses_documents_every_field_and_has_the_envelope(path: Path) -> None:
    schema = load_schema_file(path)
    assert schema.name.startswith("quorum.v1.")
    assert len(schema.fingerprint) == 8
    raw = json.loads(path.read_text())
    assert _undocumented(raw, schema.name) == []
    first = [(f["name"], f["type"]) for f in raw["fields"][:4]]
    assert first == ENVELOPE


def test_catalog_names_existing_schemas_and_covers_the_topic_map() -> None:
    catalog = TopicCatalog.load(SCHEMAS_DIR)
    names = {t.name for t in catalog}
    assert names >= REQUIRED_TOPICS
    for topic in catalog:
        assert topic.value_schema in catalog.registry
        if topic.cleanup_policy == "compact":
            assert topic.retention_ms == -1
        assert not topic.name.startswith("dlq."), "dead-letter topics are derived, not listed"


def edited_catalog(tmp_path: Path, edit: Callable[[list[dict[str, Any]]], None]) -> Path:
    """A copy of the schemas directory under ``tmp_path`` whose topic list ``edit`` changed in place."""
    (tmp_path / "avro").mkdir()
    for path in AVRO_FILES:
        (tmp_path / "avro" / path.name).write_text(path.read_text())
    doc = yaml.safe_load((SCHEMAS_DIR / "topics.yaml").read_text())
    edit(doc["topics"])
    (tmp_path / "topics.yaml").write_text(yaml.safe_dump(doc))
    return tmp_path


def test_catalog_with_an_unknown_schema_is_refused_naming_the_topic(tmp_path: Path) -> None:
    doc = yaml.safe_load((SCHEMAS_DIR / "topics.yaml").read_text())
    edited_catalog(tmp_path, lambda topics: topics[0].update(value_schema="quorum.v1.DoesNotExist"))
    with pytest.raises(SchemaError, match=doc["topics"][0]["name"].replace(".", r"\.")):
        TopicCatalog.load(tmp_path)


def test_catalog_entry_with_a_bad_field_is_refused_naming_it(tmp_path: Path) -> None:
    (tmp_path / "avro").mkdir()
    for path in AVRO_FILES:
        (tmp_path / "avro" / path.name).write_text(path.read_text())
    doc = yaml.safe_load((SCHEMAS_DIR / "topics.yaml").read_text())
    doc["topics"][0]["partitions"] = 0
    (tmp_path / "topics.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(SchemaError, match="partitions"):
        TopicCatalog.load(tmp_path)


def test_a_broken_schema_file_is_refused_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "Broken.avsc"
    bad.write_text(json.dumps({"type": "record", "name": "Broken", "fields": [{"name": "x", "type": "nosuchtype"}]}))
    with pytest.raises(SchemaError, match=r"Broken\.avsc"):
        load_schema_file(bad)


def test_a_compaction_lag_on_a_topic_that_is_not_compacted_is_refused_naming_it(tmp_path: Path) -> None:
    edited_catalog(tmp_path, lambda topics: next(t for t in topics if t["name"] == "md.bars").update(
        min_compaction_lag_ms=1000))
    with pytest.raises(SchemaError, match=r"md\.bars: min_compaction_lag_ms applies to compacted topics only"):
        TopicCatalog.load(tmp_path)


def test_the_local_layout_changes_only_the_partitions_topics_yaml_names_for_the_local_broker() -> None:
    catalog = TopicCatalog.load(SCHEMAS_DIR)
    local = catalog.local()
    assert catalog.local_partitions, "topics.yaml names no local partitions"
    assert catalog.topic("md.bars").partitions > 1  # the cluster's split by symbol stays in the catalog
    for spec in catalog:
        expected = catalog.local_partitions.get(spec.name, spec.partitions)
        assert local.topic(spec.name).partitions == expected
        assert local.topic(spec.name).model_copy(update={"partitions": spec.partitions}) == spec


@pytest.mark.parametrize(("entry", "named"), [({"md.nosuch": 1}, "md.nosuch"), ({"md.bars": 0}, "md.bars"),
                                              ({"md.bars": "one"}, "md.bars")])
def test_a_bad_local_partition_count_is_refused_naming_the_topic(tmp_path: Path, entry: dict[str, Any],
                                                                 named: str) -> None:
    (tmp_path / "avro").mkdir()
    for path in AVRO_FILES:
        (tmp_path / "avro" / path.name).write_text(path.read_text())
    doc = yaml.safe_load((SCHEMAS_DIR / "topics.yaml").read_text())
    doc["local_partitions"] = entry
    (tmp_path / "topics.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(SchemaError, match=r"local_partitions.*" + named.replace(".", r"\.")):
        TopicCatalog.load(tmp_path)
