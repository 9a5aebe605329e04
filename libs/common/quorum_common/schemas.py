"""The Avro schemas in ``schemas/avro`` and the topic catalog in ``schemas/topics.yaml``.

Each ``.avsc`` file holds one self-contained record. The registry parses every file once, computes
its Parsing Canonical Form and its CRC-64-AVRO fingerprint (the 8 bytes of Avro single-object
encoding) and looks schemas up by full name or by fingerprint.

Schema evolution: ``schemas/avro/released/`` keeps every version of every record that was ever
released, as ``<Record>.<fingerprint hex>.avsc`` (the current versions too). The registry knows all of
their fingerprints, so a record written by an older release is still read: the codec resolves it into
the current version (a field added since gets its default). Every current version must be released
(``python -m quorum_common.schema_release release``, which refuses a change that older records could not be
read into), so data written today stays readable after the next change.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from fastavro import parse_schema
from fastavro.schema import fingerprint, to_parsing_canonical_form
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from quorum_common.paths import SCHEMAS_DIR

DLQ_PREFIX = "dlq."
RELEASED_DIR = "released"
"""Sub-folder of the schema folder with every released version (see the module doc)."""


class SchemaError(Exception):
    """A schema file or the topic catalog is invalid; the message names the file and the problem."""


@dataclass(frozen=True)
class AvroSchema:
    """One parsed record schema and its identity on the wire."""

    name: str
    """Full name, e.g. ``quorum.v1.BarClosed``."""
    raw: dict[str, Any]
    """The schema as written in the file."""
    parsed: dict[str, Any]
    """The schema parsed by fastavro, ready for its readers and writers."""
    canonical: str
    """Parsing Canonical Form."""
    fingerprint: bytes
    """CRC-64-AVRO fingerprint of the canonical form, little-endian, 8 bytes."""
    path: Path


class SchemaRegistry:
    """Every schema of a folder, by full name and by fingerprint; earlier released versions by fingerprint."""

    def __init__(self, schemas: list[AvroSchema], released: list[AvroSchema] = ()) -> None:
        self._by_name = {s.name: s for s in schemas}
        self._by_fingerprint = {s.fingerprint: s for s in schemas}
        if len(self._by_fingerprint) != len(schemas):
            raise SchemaError("two schema files have the same canonical form (duplicate fingerprint)")
        self._released: dict[bytes, AvroSchema] = {}
        for old in released:
            if old.name not in self._by_name:
                raise SchemaError(f"{RELEASED_DIR}/{old.path.name}: no current schema {old.name} to read it into")
            expected = released_file_name(old)
            if old.path.name != expected:
                raise SchemaError(f"{RELEASED_DIR}/{old.path.name}: its content is {expected}")
            if old.fingerprint not in self._by_fingerprint:
                self._released[old.fingerprint] = old
        self.released_fingerprints = frozenset(s.fingerprint for s in released)
        """Fingerprints of every released version (the current ones included once released)."""

    @classmethod
    def from_dir(cls, avro_dir: Path) -> SchemaRegistry:
        """Parse every ``*.avsc`` of ``avro_dir`` and of its ``released/`` folder; raise :class:`SchemaError`
        naming a bad file."""
        files = sorted(Path(avro_dir).glob("*.avsc"))
        if not files:
            raise SchemaError(f"no .avsc files in {avro_dir}")
        released = sorted((Path(avro_dir) / RELEASED_DIR).glob("*.avsc"))
        return cls([load_schema_file(p) for p in files], [load_schema_file(p) for p in released])

    def __contains__(self, name: str) -> bool:
        return name in self._by_name

    def __iter__(self):
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    def get(self, name: str) -> AvroSchema:
        """The schema with full name ``name``."""
        try:
            return self._by_name[name]
        except KeyError:
            raise SchemaError(f"unknown schema {name!r}") from None

    def by_fingerprint(self, fp: bytes) -> AvroSchema | None:
        """The schema with this CRC-64-AVRO fingerprint (a current or an earlier released version), or ``None``."""
        return self._by_fingerprint.get(fp) or self._released.get(fp)

    def current(self, schema: AvroSchema) -> AvroSchema:
        """The current version of ``schema``'s record (``schema`` itself when it is current)."""
        return self._by_name[schema.name]

    def unreleased(self) -> list[AvroSchema]:
        """Current versions that are not in ``released/`` yet."""
        return [s for s in self if s.fingerprint not in self.released_fingerprints]

    def earlier_versions(self) -> list[AvroSchema]:
        """The released versions that are not current (records written with them are read into the current one)."""
        return list(self._released.values())


def released_file_name(schema: AvroSchema) -> str:
    """The file name of ``schema``'s version in ``released/``: ``<Record>.<fingerprint hex>.avsc``."""
    return f"{schema.name.rsplit('.', 1)[-1]}.{schema.fingerprint.hex()}.avsc"


def load_schema_file(path: Path) -> AvroSchema:
    """Parse one ``.avsc`` file into an :class:`AvroSchema`."""
    try:
        raw = json.loads(Path(path).read_text())
        parsed = parse_schema(raw, _write_hint=True)
    except Exception as exc:  # fastavro raises several exception types
        raise SchemaError(f"{path.name}: {exc}") from exc
    if not isinstance(raw, dict) or raw.get("type") != "record":
        raise SchemaError(f"{path.name}: top-level type must be a record")
    canonical = to_parsing_canonical_form(parsed)
    fp = bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))
    return AvroSchema(name=parsed["name"], raw=raw, parsed=parsed, canonical=canonical, fingerprint=fp, path=path)


class TopicSpec(BaseModel):
    """One entry of the topic catalog."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")
    key: str
    value_schema: str
    partitions: int = Field(ge=1)
    cleanup_policy: Literal["delete", "compact"]
    retention_ms: int = Field(ge=-1)
    min_compaction_lag_ms: int | None = Field(None, ge=0)
    """Compacted topics: how long a record is kept before compaction may drop it for a later one of its key (the
    broker's ``min.compaction.lag.ms``); None: the broker's default (0)."""
    max_message_bytes: int | None = Field(None, ge=1024)
    """The largest record the topic takes (the broker's ``max.message.bytes``); None: the broker's default."""
    doc: str = Field(min_length=1)

    @model_validator(mode="after")
    def _compaction_lag_on_compacted_topics(self) -> TopicSpec:
        if self.min_compaction_lag_ms is not None and self.cleanup_policy != "compact":
            raise ValueError(f"{self.name}: min_compaction_lag_ms applies to compacted topics only")
        return self

    @property
    def dlq(self) -> str:
        """Name of this topic's dead-letter topic."""
        return dlq_topic(self.name)


def dlq_topic(topic: str) -> str:
    """Dead-letter topic of ``topic``."""
    return DLQ_PREFIX + topic


class TopicCatalog:
    """The topics of the desk, each with its value schema."""

    def __init__(self, topics: list[TopicSpec], registry: SchemaRegistry,
                 local_partitions: dict[str, int] | None = None) -> None:
        self.registry = registry
        self._topics = {t.name: t for t in topics}
        if len(self._topics) != len(topics):
            raise SchemaError("topics.yaml lists a topic twice")
        for t in topics:
            if t.value_schema not in registry:
                raise SchemaError(f"topics.yaml: topic {t.name!r} names unknown schema {t.value_schema!r}")
        self.local_partitions = dict(local_partitions or {})
        """Topic -> its partitions on the local single-node broker, where they differ from the cluster's."""
        for name, count in self.local_partitions.items():
            if name not in self._topics:
                raise SchemaError(f"topics.yaml: local_partitions names {name!r}, which is not in the catalog")
            if not isinstance(count, int) or isinstance(count, bool) or count < 1:
                raise SchemaError(f"topics.yaml: local_partitions.{name} must be a whole number >= 1, not {count!r}")

    def local(self) -> TopicCatalog:
        """This catalog as the local single-node broker lays it out (``local_partitions`` applied): what
        ``make kafka-up`` / ``make up`` and the pipeline benchmark create."""
        topics = [t.model_copy(update={"partitions": self.local_partitions[t.name]})
                  if t.name in self.local_partitions else t for t in self._topics.values()]
        return TopicCatalog(topics, self.registry)

    @classmethod
    def load(cls, schemas_dir: Path = SCHEMAS_DIR) -> TopicCatalog:
        """Load ``topics.yaml`` and every schema of ``schemas_dir``."""
        registry = SchemaRegistry.from_dir(Path(schemas_dir) / "avro")
        path = Path(schemas_dir) / "topics.yaml"
        try:
            doc = yaml.safe_load(path.read_text())
            topics = [TopicSpec(**entry) for entry in doc["topics"]]
            local_partitions = dict(doc.get("local_partitions") or {})
        except ValidationError as exc:
            raise SchemaError(f"{path.name}: {exc}") from exc
        except (KeyError, TypeError, ValueError, yaml.YAMLError, OSError) as exc:
            raise SchemaError(f"{path.name}: {exc}") from exc
        return cls(topics, registry, local_partitions)

    def __iter__(self):
        return iter(self._topics.values())

    def __contains__(self, name: str) -> bool:
        return name in self._topics

    def topic(self, name: str) -> TopicSpec:
        """The catalog entry of ``name``; raise :class:`SchemaError` when it is not in the catalog."""
        try:
            return self._topics[name]
        except KeyError:
            raise SchemaError(f"topic {name!r} is not in the catalog") from None

    def schema_for(self, topic: str) -> AvroSchema:
        """The value schema of ``topic``."""
        return self.registry.get(self.topic(topic).value_schema)


@lru_cache(maxsize=4)
def default_catalog(schemas_dir: Path = SCHEMAS_DIR) -> TopicCatalog:
    """The catalog of the checkout, loaded once per process."""
    return TopicCatalog.load(schemas_dir)
