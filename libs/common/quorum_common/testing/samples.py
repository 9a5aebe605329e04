"""Deterministic sample records for any Avro schema (tests and benchmarks).

Every field gets a value derived from a seeded random generator; optional unions get their
non-null branch (``fill_optional=True``) so that every branch of a schema is exercised.
"""

from __future__ import annotations

import random
from typing import Any

from quorum_common.schemas import AvroSchema


def sample_record(schema: AvroSchema, seed: int = 0, fill_optional: bool = True, list_len: int = 2) -> dict[str, Any]:
    """A valid record of ``schema``; the same seed gives the same record."""
    rng = random.Random(f"{schema.name}:{seed}")
    named: dict[str, Any] = {}
    return _value(schema.raw, rng, named, fill_optional, list_len)


def _value(t: Any, rng: random.Random, named: dict[str, Any], fill: bool, n: int) -> Any:
    if isinstance(t, list):  # union
        branches = [b for b in t if b != "null"] if fill else t
        return _value(branches[0] if branches else "null", rng, named, fill, n)
    if isinstance(t, str):
        if t in named:
            return _value(named[t], rng, named, fill, n)
        return _primitive(t, rng)
    kind = t["type"]
    if kind == "record":
        named[t["name"]] = t
        if "namespace" in t:
            named[f"{t['namespace']}.{t['name']}"] = t
        rec = {f["name"]: _value(f["type"], rng, named, fill, n) for f in t["fields"]}
        if "ts_event" in rec:
            rec["ts_event"] = rec["ts_init"] = 1_700_000_000_000_000_000 + rng.randrange(10**12)
        return rec
    if kind == "enum":
        named[t["name"]] = t
        return rng.choice(t["symbols"])
    if kind == "array":
        return [_value(t["items"], rng, named, fill, n) for _ in range(n)]
    if kind == "map":
        return {f"k{i}": _value(t["values"], rng, named, fill, n) for i in range(n)}
    if kind == "fixed":
        named[t["name"]] = t
        return bytes(rng.randrange(256) for _ in range(t["size"]))
    return _primitive(kind, rng)


def _primitive(kind: str, rng: random.Random) -> Any:
    if kind == "null":
        return None
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "int":
        return rng.randrange(-1000, 1000)
    if kind == "long":
        return rng.randrange(-(10**12), 10**12)
    if kind in ("float", "double"):
        return round(rng.uniform(-1000, 1000), 3) if kind == "double" else 0.5
    if kind == "string":
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij0123456789-_."
        return "".join(rng.choice(alphabet) for _ in range(rng.randrange(3, 12)))
    if kind == "bytes":
        return bytes(rng.randrange(256) for _ in range(8))
    raise ValueError(f"no sample for Avro type {kind!r}")
