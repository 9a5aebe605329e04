"""The codec's compiled fast path gives exactly what fastavro gives: the same bytes, the same records,
the same refusals; values it declines and corrupt messages go to fastavro."""

from __future__ import annotations

import math
import os
import random
import subprocess
import sys
import tracemalloc
from typing import Any

import numpy as np
import pytest
from quorum_common import avro_fast
from quorum_common.codec import MARKER, AvroCodec, CodecError, CorruptMessageError
from quorum_common.schemas import default_catalog
from quorum_common.testing.samples import sample_record

FUZZ_ROUNDS = int(os.environ.get("QUORUM_FUZZ_ROUNDS", "300"))
"""Corrupt messages per schema (``libs/common/scripts/asan.sh`` runs many more under the sanitizers)."""
REGISTRY = default_catalog().registry
SCHEMAS = sorted(REGISTRY, key=lambda s: s.name)
FAST = AvroCodec(REGISTRY)
REFERENCE = AvroCodec(REGISTRY, fast=False)


def same(a: Any, b: Any) -> bool:
    """Equal values of equal types all the way down (1 and 1.0 differ; NaN equals NaN)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return a == b


def _edge(kind: str, rng: random.Random) -> Any:
    if kind == "long":
        return rng.choice([0, -1, 1, 63, 64, -64, -65, 2**31, -(2**31) - 1, 2**63 - 1, -(2**63), rng.getrandbits(62)])
    if kind == "int":
        return rng.choice([0, -1, 1, 2**31 - 1, -(2**31), rng.randrange(-(2**31), 2**31)])
    if kind == "double":
        return rng.choice([0.0, -0.0, 1e-300, -1e308, math.inf, -math.inf, math.nan, rng.uniform(-1e9, 1e9)])
    if kind == "string":
        return rng.choice(["", "é", "ünïcødé €", "日本語", "🚀 emoji", "x" * 300, "a\x00b"])
    if kind == "boolean":
        return rng.random() < 0.5
    return None


def _vary(t: Any, value: Any, rng: random.Random, named: dict[str, Any]) -> Any:
    """``value`` (a sample of type ``t``) with edge values, empty or longer containers and None in unions."""
    if isinstance(t, list):
        if "null" in t and rng.random() < 0.3:
            return None
        branch = next(b for b in t if b != "null")
        return None if value is None else _vary(branch, value, rng, named)
    if isinstance(t, str):
        if t in named:
            return _vary(named[t], value, rng, named)
        edge = _edge(t, rng)
        return edge if edge is not None and rng.random() < 0.5 else value
    kind = t["type"]
    if kind in ("record", "enum"):
        named[t["name"]] = t
        named[f"{t.get('namespace', '')}.{t['name']}".lstrip(".")] = t
    if kind == "record":
        return {f["name"]: _vary(f["type"], value[f["name"]], rng, named) for f in t["fields"]}
    if kind == "array":
        items = [_vary(t["items"], v, rng, named) for v in value]
        return items if rng.random() < 0.7 else []
    if kind == "map":
        return {k + rng.choice(["", "é", "🚀"]): _vary(t["values"], v, rng, named) for k, v in value.items()}
    return value


def test_the_fast_path_is_built_and_takes_every_schema() -> None:
    # fails when the C++ extension did not build (the codec would silently use fastavro alone)
    assert avro_fast.BACKEND == "avrofast", avro_fast.MISSING_REASON
    assert FAST.fast_schemas == {s.name for s in REGISTRY}
    assert REFERENCE.fast_schemas == frozenset()


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda s: s.name.split(".")[-1])
def test_same_bytes_and_records_as_fastavro(schema) -> None:
    rng = random.Random(f"fast:{schema.name}")
    compiled = avro_fast.compile_schema(schema, MARKER + schema.fingerprint)
    for seed in range(40):
        sample = sample_record(schema, seed=seed, fill_optional=seed % 3 != 0, list_len=seed % 4)
        record = _vary(schema.raw, sample, rng, {}) if seed % 2 else sample
        data = FAST.encode(schema, record)
        assert data == REFERENCE.encode(schema, record), (seed, record)
        assert compiled.encode(record) == data  # taken by the fast path itself, not by its fallback
        assert same(compiled.decode(data), REFERENCE.decode(data)[1])
        got_schema, got = FAST.decode(data)
        ref_schema, ref = REFERENCE.decode(data)
        assert got_schema is ref_schema
        assert same(got, ref), (seed, got, ref)


def _bar() -> dict[str, Any]:
    return sample_record(REGISTRY.get("quorum.v1.BarClosed"), seed=3)


def _optional_double_field(schema_name: str) -> str:
    schema = REGISTRY.get(schema_name)
    return next(f["name"] for f in schema.raw["fields"] if f["type"] == ["null", "double"])


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda r: r.update(open=np.float64(101.5), volume=np.float32(7.0)), "numpy floats"),
        (lambda r: r.update(ts_event=np.int64(r["ts_event"])), "a numpy int"),
        (lambda r: r.update(open="NaN"), "fastavro reads a double field's str with float()"),
        (lambda r: r.update(open=3), "an int in a double field"),
        (lambda r: r.update(extra="ignored"), "a key the schema does not have"),
    ],
)
def test_values_fastavro_converts_are_written_as_fastavro_writes_them(change, why: str) -> None:
    record = _bar()
    change(record)
    assert FAST.encode("quorum.v1.BarClosed", record) == REFERENCE.encode("quorum.v1.BarClosed", record), why


def test_union_choices_follow_fastavro() -> None:
    name = "quorum.v1.SignalGenerated"
    schema = REGISTRY.get(name)
    field = _optional_double_field(name)
    base = sample_record(schema, seed=1)
    for value in (None, 2, 2.5, np.float64(0.25)):
        record = {**base, field: value}
        assert FAST.encode(name, record) == REFERENCE.encode(name, record), value
    for value in (True, "2.5", [1.0]):  # fastavro's union validation refuses these
        with pytest.raises(CodecError, match="SignalGenerated"):
            FAST.encode(name, {**base, field: value})
    missing = {k: v for k, v in base.items() if k != field}  # a missing optional field is null
    as_null = REFERENCE.encode(name, {**base, field: None})
    assert FAST.encode(name, missing) == REFERENCE.encode(name, missing) == as_null


def test_a_missing_required_field_is_refused_with_fastavro_s_message() -> None:
    record = _bar()
    del record["symbol"]
    with pytest.raises(CodecError, match=r"BarClosed.*no value and no default for symbol"):
        FAST.encode("quorum.v1.BarClosed", record)


def test_tuple_arrays_are_left_to_fastavro() -> None:
    name = "quorum.v1.TargetWeightsSet"
    schema = REGISTRY.get(name)
    record = sample_record(schema, seed=2, list_len=2)
    array_field = next(f["name"] for f in schema.raw["fields"] if isinstance(f["type"], dict)
                       and f["type"]["type"] == "array")
    as_tuple = {**record, array_field: tuple(record[array_field])}
    assert FAST.encode(name, as_tuple) == REFERENCE.encode(name, record)


def _outcome(codec: AvroCodec, data: bytes) -> tuple[str, Any]:
    try:
        schema, record = codec.decode(data)
    except CorruptMessageError as exc:
        return "corrupt", str(exc)
    except CodecError as exc:
        return type(exc).__name__, str(exc)
    return schema.name, record


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda s: s.name.split(".")[-1])
def test_corrupt_messages_decode_or_fail_exactly_as_with_fastavro(schema) -> None:
    rng = random.Random(f"corrupt:{schema.name}")
    data = bytearray(FAST.encode(schema, sample_record(schema, seed=5, list_len=2)))
    failures = 0
    for _ in range(FUZZ_ROUNDS):
        bad = bytearray(data)
        how = rng.randrange(4)
        if how == 0:
            del bad[rng.randrange(10, len(bad)):]
        elif how == 1:
            bad[rng.randrange(10, len(bad))] = rng.randrange(256)
        elif how == 2:
            bad += bytes(rng.randrange(256) for _ in range(rng.randrange(1, 8)))
        else:
            i = rng.randrange(10, len(bad))
            bad[i:i] = bytes([0xFF] * rng.randrange(1, 12))
        got, ref = _outcome(FAST, bytes(bad)), _outcome(REFERENCE, bytes(bad))
        assert got[0] == ref[0] and (got[0] == "corrupt" or same(got[1], ref[1])), (bytes(bad).hex(), got, ref)
        failures += got[0] == "corrupt"
    assert failures > FUZZ_ROUNDS // 3  # the mutations did reach the error paths


def test_no_memory_is_kept_across_many_records() -> None:
    schema = REGISTRY.get("quorum.v1.MandateCompiled")
    record = sample_record(schema, seed=1, list_len=3)
    data = FAST.encode(schema, record)
    bad = data[:-3]

    def churn(n: int) -> None:
        for _ in range(n):
            FAST.encode(schema, record)
            FAST.decode(data)
            with pytest.raises(CorruptMessageError):
                FAST.decode(bad)

    churn(500)
    tracemalloc.start()
    try:
        churn(200)
        before = tracemalloc.get_traced_memory()[0]
        churn(5000)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 64 * 1024, f"{grown} bytes kept after 5000 rounds"


@pytest.mark.parametrize(("value", "backend"), [("fastavro", "fastavro"), ("avrofast", "avrofast"), ("", "avrofast")])
def test_the_backend_can_be_chosen(value: str, backend: str) -> None:
    code = "from quorum_common import avro_fast; print(avro_fast.BACKEND)"
    env = {"QUORUM_AVRO_BACKEND": value, "PATH": ""}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == backend


def test_an_unknown_backend_is_refused_naming_the_variable() -> None:
    code = "from quorum_common import avro_fast"
    env = {"QUORUM_AVRO_BACKEND": "turbo", "PATH": ""}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode != 0 and "QUORUM_AVRO_BACKEND must be avrofast or fastavro" in out.stderr


@pytest.mark.parametrize(
    ("program", "error", "message"),
    [
        ((12, "R", "not a tuple"), TypeError, "record fields must be a tuple"),
        ((12, "R", (("f", (8, ["A"]), False, None),)), TypeError, "enum symbols must be a tuple"),
        ((12, "R", (("f", (11, [(0,), (5,)]), True, None),)), TypeError, "union branches must be a tuple"),
        ((12, "R", (("f", (11, ((5,), (6,))), False, None),)), NotImplementedError, "more than one non-null"),
        ((12, "R", (("f", (99,), False, None),)), ValueError, "unknown node kind 99"),
        ((5,), ValueError, "top-level schema must be a record"),
    ],
)
def test_a_malformed_program_is_refused_with_a_clear_error(program: tuple, error: type, message: str) -> None:
    from quorum_common import _avrofast

    with pytest.raises(error, match=message):
        _avrofast.Schema(program, b"hdr")


def test_current_messages_decode_without_fastavro(monkeypatch: pytest.MonkeyPatch) -> None:
    # the codec's one-call decoder takes every current schema: fastavro's reader is never reached
    def no_fastavro(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("fastavro's reader was used")

    monkeypatch.setattr("quorum_common.codec.schemaless_reader", no_fastavro)
    for schema in SCHEMAS:
        record = sample_record(schema, seed=2, list_len=2)
        data = REFERENCE.encode(schema, record)
        for message in (data, bytearray(data), memoryview(data)):
            got_schema, got = FAST.decode(message)
            assert got_schema is schema and same(got, record), schema.name


def test_the_decoder_names_what_it_cannot_take() -> None:
    from quorum_common import _avrofast

    bar, signal = REGISTRY.get("quorum.v1.BarClosed"), REGISTRY.get("quorum.v1.SignalGenerated")
    compiled = {s.name: avro_fast.compile_schema(s, MARKER + s.fingerprint) for s in (bar, signal)}
    decoder = avro_fast.decoder(list(compiled.items()))
    record = sample_record(signal, seed=4)
    assert decoder.decode(FAST.encode(signal, record)) == (signal.name, record)
    mandate = REGISTRY.get("quorum.v1.MandateCompiled")
    with pytest.raises(_avrofast.DecodeError, match="no header of this decoder's schemas"):
        decoder.decode(FAST.encode(mandate, sample_record(mandate, seed=4)))
    with pytest.raises(_avrofast.DecodeError, match="no header"):
        decoder.decode(MARKER)  # shorter than a header
    with pytest.raises(_avrofast.DecodeError, match="trailing bytes"):
        decoder.decode(FAST.encode(signal, record) + b"\x00")
    assert avro_fast.decoder([]) is None
    with pytest.raises(TypeError, match=r"\(tag, Schema\) pair"):
        _avrofast.Decoder([("bar", "not a schema")])
    with pytest.raises(ValueError, match="same header"):
        _avrofast.Decoder([("a", compiled[bar.name]), ("b", compiled[bar.name])])
    short = _avrofast.Schema(avro_fast.program(bar), b"hdr")
    with pytest.raises(ValueError, match="same length"):
        _avrofast.Decoder([("a", compiled[bar.name]), ("b", short)])
