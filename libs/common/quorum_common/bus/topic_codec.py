"""Encoding records for catalog topics and decoding them back, shared by every transport."""

from __future__ import annotations

from typing import Any

from quorum_common.codec import AvroCodec, CodecError
from quorum_common.schemas import TopicCatalog, default_catalog


class WrongSchemaError(CodecError):
    """A topic carried a record of another schema than the catalog names for it."""


class TopicCodec:
    """Avro single-object encoding with each topic's value schema from the catalog."""

    def __init__(self, catalog: TopicCatalog | None = None) -> None:
        self.catalog = catalog or default_catalog()
        self.codec = AvroCodec(self.catalog.registry)
        self._schemas = {t.name: self.catalog.registry.get(t.value_schema) for t in self.catalog}

    def encode(self, topic: str, record: dict[str, Any]) -> bytes:
        """Encode ``record`` with the value schema of ``topic``."""
        schema = self._schemas.get(topic)
        if schema is None:
            schema = self.catalog.schema_for(topic)  # raises a clear error for an unknown topic
        return self.codec.encode(schema, record)

    def decode(self, topic: str, data: bytes) -> tuple[str, dict[str, Any]]:
        """Decode a value read from ``topic``: the writer schema's name and the record."""
        schema, record = self.codec.decode(data)
        expected = self._schemas.get(topic)
        if expected is not None and schema.name != expected.name:
            raise WrongSchemaError(f"topic {topic} carries {expected.name}, got {schema.name}")
        return schema.name, record
