"""Avro single-object encoding: ``C3 01`` marker, 8-byte CRC-64-AVRO fingerprint, binary body.

Any reader that knows the schemas of ``schemas/avro`` finds the writer's schema from the
fingerprint, so messages need no schema registry. A message written with an earlier released version
of a record is resolved into the current version (Avro schema resolution: a field added since gets its
default), so every decoded record has the shape of today's schema. Current schemas are encoded and
decoded by the compiled fast path of :mod:`quorum_common.avro_fast`; fastavro's schemaless writer and
reader take everything else (earlier versions, values the fast path declines) and give every error.
"""

from __future__ import annotations

from io import BytesIO
from typing import Any

from fastavro import schemaless_reader, schemaless_writer

from quorum_common.avro_fast import compile_schema, decoder
from quorum_common.schemas import AvroSchema, SchemaRegistry

MARKER = b"\xc3\x01"
HEADER_LEN = len(MARKER) + 8


class CodecError(Exception):
    """A message could not be encoded or decoded; the message says why."""


class UnknownFingerprintError(CodecError):
    """The message was written with a schema this reader does not know."""


class CorruptMessageError(CodecError):
    """The bytes are not a valid single-object-encoded Avro message."""


class AvroCodec:
    """Encode records to and decode them from Avro single-object encoding."""

    def __init__(self, registry: SchemaRegistry, fast: bool = True) -> None:
        """``fast=False`` leaves every record to fastavro (the reference the fast path is tested against)."""
        self.registry = registry
        self._fast: dict[bytes, tuple[AvroSchema, Any]] = {}  # by fingerprint: current versions only
        for schema in registry if fast else ():
            compiled = compile_schema(schema, MARKER + schema.fingerprint)
            if compiled is not None:
                self._fast[schema.fingerprint] = (schema, compiled)
        # every compiled schema in one extension call: header lookup and decoding without Python in between
        self._fast_decoder = decoder(list(self._fast.values()))

    @property
    def fast_schemas(self) -> frozenset[str]:
        """Names of the schemas encoded and decoded by the compiled fast path."""
        return frozenset(schema.name for schema, _ in self._fast.values())

    def encode(self, schema: AvroSchema | str, record: dict[str, Any]) -> bytes:
        """Encode ``record`` with ``schema`` (an :class:`AvroSchema` or a full name)."""
        if isinstance(schema, str):
            schema = self.registry.get(schema)
        fast = self._fast.get(schema.fingerprint)  # an earlier version passed in is written by fastavro
        if fast is not None:
            try:
                return fast[1].encode(record)
            except Exception:  # fastavro below gives the reference result or error
                pass
        buf = BytesIO()
        buf.write(MARKER)
        buf.write(schema.fingerprint)
        try:
            schemaless_writer(buf, schema.parsed, record)
        except Exception as exc:  # fastavro raises ValueError, TypeError, KeyError, AttributeError
            raise CodecError(f"record does not match {schema.name}: {exc!r}") from exc
        return buf.getvalue()

    def schema_of(self, data: bytes) -> AvroSchema:
        """The writer's schema of an encoded message."""
        if len(data) < HEADER_LEN or data[:2] != MARKER:
            raise CorruptMessageError(
                f"not an Avro single-object message (length {len(data)}, first bytes {bytes(data[:2])!r})"
            )
        fp = bytes(data[2:HEADER_LEN])
        schema = self.registry.by_fingerprint(fp)
        if schema is None:
            raise UnknownFingerprintError(f"unknown schema fingerprint {fp.hex()}")
        return schema

    def decode(self, data: bytes) -> tuple[AvroSchema, dict[str, Any]]:
        """Decode a message into the current version of its record's schema and the record (in that version)."""
        if self._fast_decoder is not None:
            try:
                return self._fast_decoder.decode(data)
            except Exception:  # an earlier version, or corrupt: fastavro below gives the result or the error
                pass
        writer = self.schema_of(data)
        schema = self.registry.current(writer)
        buf = BytesIO(data)
        buf.seek(HEADER_LEN)
        try:
            record = schemaless_reader(buf, writer.parsed, None if schema is writer else schema.parsed)
        except Exception as exc:  # EOFError, UnicodeDecodeError, IndexError, ... on corrupt input
            raise CorruptMessageError(f"corrupt {schema.name} body: {exc!r}") from exc
        if buf.tell() != len(data):
            raise CorruptMessageError(f"{len(data) - buf.tell()} trailing bytes after a {schema.name} body")
        return schema, record
