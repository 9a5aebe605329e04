"""Avro single-object encoding: round trips for every schema and clear errors for bad input."""

from __future__ import annotations

import random

import pytest
from quorum_common.codec import MARKER, AvroCodec, CodecError, CorruptMessageError, UnknownFingerprintError
from quorum_common.schemas import default_catalog
from quorum_common.testing.samples import sample_record

REGISTRY = default_catalog().registry
SCHEMAS = sorted(REGISTRY, key=lambda s: s.name)


@pytest.fixture(scope="module")
def codec() -> AvroCodec:
    return AvroCodec(REGISTRY)


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda s: s.name.split(".")[-1])
@pytest.mark.parametrize("fill_optional", [True, False])
def test_every_schema_round_trips(codec: AvroCodec, schema, fill_optional: bool) -> None:
    record = sample_record(schema, seed=7, fill_optional=fill_optional)
    data = codec.encode(schema.name, record)
    assert data[:2] == MARKER
    assert data[2:10] == schema.fingerprint
    decoded_schema, decoded = codec.decode(data)
    assert decoded_schema.name == schema.name
    assert decoded == record


def test_fingerprint_matches_the_avro_specification() -> None:
    # The spec's CRC-64-AVRO of the schema "null" is 0x63dd24e7cc258f8a, stored little-endian.
    from fastavro.schema import fingerprint

    assert bytes.fromhex(fingerprint('"null"', "CRC-64-AVRO")) == (0x63DD24E7CC258F8A).to_bytes(8, "little")


def test_unknown_fingerprint_is_a_clear_error(codec: AvroCodec) -> None:
    data = MARKER + b"\x01\x02\x03\x04\x05\x06\x07\x08" + b"\x00"
    with pytest.raises(UnknownFingerprintError, match="0102030405060708"):
        codec.decode(data)


@pytest.mark.parametrize("data", [b"", b"\xc3", b"{}", b"\x00\x01" + b"\x00" * 20])
def test_not_single_object_encoding_is_corrupt(codec: AvroCodec, data: bytes) -> None:
    with pytest.raises(CorruptMessageError):
        codec.decode(data)


def test_truncated_and_padded_bodies_are_corrupt(codec: AvroCodec) -> None:
    schema = REGISTRY.get("quorum.v1.BarClosed")
    data = codec.encode(schema, sample_record(schema))
    with pytest.raises(CorruptMessageError, match="BarClosed"):
        codec.decode(data[: len(data) - 5])
    with pytest.raises(CorruptMessageError, match="trailing"):
        codec.decode(data + b"\x00\x00")


def test_random_garbage_never_escapes_as_another_exception(codec: AvroCodec) -> None:
    rng = random.Random(42)
    schema = REGISTRY.get("quorum.v1.OrderFilled")
    header = MARKER + schema.fingerprint
    refused = 0
    for _ in range(2000):
        body = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 64)))
        try:
            codec.decode(header + body)
        except CodecError:
            refused += 1
    assert refused > 1900


def test_encoding_a_record_that_does_not_match_names_the_schema(codec: AvroCodec) -> None:
    with pytest.raises(CodecError, match="BarClosed"):
        codec.encode("quorum.v1.BarClosed", {"event_id": "x"})
