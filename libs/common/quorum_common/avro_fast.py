"""The codec's fast path: record schemas compiled into the C++ extension ``quorum_common._avrofast``.

fastavro interprets a schema on every call (12-40 µs a record on this machine); the extension walks a
tree compiled once per schema (0.6-6 µs). It mirrors fastavro's schemaless writer and reader, and
fastavro stays the reference: :class:`~quorum_common.codec.AvroCodec` uses the fast path only for
current schemas and falls back to fastavro whenever it raises, so every error message, every value
the fast path declines (a tuple for an array, ``"NaN"`` for a double, ...) and every record of an
earlier schema version goes through fastavro. Tests prove that both give the same bytes and the
same records for every schema.

Without a C++ compiler at install time the extension is missing; the codec then logs one warning and
uses fastavro alone (``BACKEND`` says which is in use). ``QUORUM_AVRO_BACKEND`` chooses explicitly:
``fastavro`` turns the fast path off (for comparisons, or should it ever misbehave), ``avrofast`` makes a
missing extension an error at import instead of a warning.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from quorum_common.schemas import AvroSchema

log = logging.getLogger(__name__)

BACKEND_ENV = "QUORUM_AVRO_BACKEND"
_CHOICES = ("", "avrofast", "fastavro")
_chosen = os.environ.get(BACKEND_ENV, "").strip().lower()
if _chosen not in _CHOICES:
    raise ValueError(f"{BACKEND_ENV} must be avrofast or fastavro (or unset), got {_chosen!r}")

try:
    from quorum_common import _avrofast
except ImportError as exc:  # built without a C++ compiler
    if _chosen == "avrofast":
        raise ImportError(f"{BACKEND_ENV}=avrofast but the extension is missing: {exc}") from exc
    _avrofast = None
    MISSING_REASON = str(exc)
else:
    MISSING_REASON = ""
if _chosen == "fastavro":
    _avrofast = None
    MISSING_REASON = f"{BACKEND_ENV}=fastavro"

BACKEND = "avrofast" if _avrofast is not None else "fastavro"
"""``avrofast`` when the compiled fast path is in use, else ``fastavro``."""

# node kinds of the extension's schema program (csrc/avrofast.cc)
_PRIMITIVES = {"null": 0, "boolean": 1, "int": 2, "long": 3, "float": 4, "double": 5, "string": 6, "bytes": 7}
_ENUM, _ARRAY, _MAP, _UNION, _RECORD = 8, 9, 10, 11, 12
_warned = False


class UnsupportedSchema(Exception):
    """The schema uses a feature the fast path leaves to fastavro (e.g. a union of two non-null types)."""


def program(schema: AvroSchema) -> tuple:
    """The extension's program for ``schema``: nested tuples, named types (fastavro's ``__named_schemas``)
    expanded where referenced."""
    return _node(schema.parsed, schema.parsed.get("__named_schemas", {}), ())


def _node(t: Any, named: dict[str, Any], stack: tuple[str, ...]) -> tuple:
    if isinstance(t, list):
        return (_UNION, tuple(_node(b, named, stack) for b in t))
    if isinstance(t, str):
        if t in _PRIMITIVES:
            return (_PRIMITIVES[t],)
        if t not in named:
            raise UnsupportedSchema(f"unknown named type {t}")
        return _node(named[t], named, stack)
    if not isinstance(t, dict):
        raise UnsupportedSchema(f"unexpected schema node {t!r}")
    if "logicalType" in t:
        raise UnsupportedSchema(f"logical type {t['logicalType']}")
    kind = t["type"]
    if kind in ("record", "error"):
        name = t["name"]
        if name in stack:
            raise UnsupportedSchema(f"recursive type {name}")
        fields = []
        for f in t["fields"]:
            ftype = f["type"]
            # fastavro: a missing key takes the field's default, or None where "null" is in the type
            has_fallback = "default" in f or "null" in ftype
            fields.append((f["name"], _node(ftype, named, (*stack, name)), has_fallback, f.get("default")))
        return (_RECORD, name, tuple(fields))
    if kind == "enum":
        return (_ENUM, tuple(t["symbols"]))
    if kind == "array":
        return (_ARRAY, _node(t["items"], named, stack))
    if kind == "map":
        return (_MAP, _node(t["values"], named, stack))
    if kind in _PRIMITIVES:
        return (_PRIMITIVES[kind],)
    raise UnsupportedSchema(f"type {kind}")


def compile_schema(schema: AvroSchema, header: bytes) -> Any | None:
    """The compiled fast path of ``schema`` (its messages start with ``header``), or ``None`` where the
    extension is missing or the schema needs fastavro."""
    global _warned
    if _avrofast is None:
        if not _warned and _chosen != "fastavro":
            log.warning("Avro fast path unavailable, using fastavro alone", extra={"reason": MISSING_REASON})
            _warned = True
        return None
    try:
        return _avrofast.Schema(program(schema), header)
    except (UnsupportedSchema, NotImplementedError) as exc:
        log.info("schema left to fastavro", extra={"schema": schema.name, "reason": str(exc)})
        return None


def decoder(entries: list[tuple[Any, Any]]) -> Any | None:
    """One decoder for the compiled schemas of ``entries`` (``(tag, compiled schema)`` pairs, all with
    headers of one length): its ``decode(message)`` returns ``(tag, record)`` of the schema whose header
    starts the message, and raises where none does or the body is corrupt. ``None`` without the extension
    or without entries."""
    if _avrofast is None or not entries:
        return None
    return _avrofast.Decoder(entries)
