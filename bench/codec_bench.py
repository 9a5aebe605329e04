"""Codec benchmark: µs per record to encode and to decode, for the three largest schemas and the two
records the desk sends most (signals and bars), with fastavro alone alongside for comparison."""

from __future__ import annotations

import functools
import timeit

from quorum_common import avro_fast
from quorum_common.benchjson import Figure, write_result
from quorum_common.codec import AvroCodec
from quorum_common.schemas import AvroSchema, default_catalog
from quorum_common.testing.samples import sample_record

TARGET_US = 3.0
MOST_SENT = ("quorum.v1.SignalGenerated", "quorum.v1.BarClosed")


def _per_record_us(call, repeat: int, number: int) -> float:
    return min(timeit.repeat(call, repeat=repeat, number=number)) / number * 1e6


def run(repeat: int = 5, number: int = 20_000) -> list[Figure]:
    """Measure the codec and write ``bench/results/codec.json``."""
    registry = default_catalog().registry
    codec = AvroCodec(registry)
    reference = AvroCodec(registry, fast=False)
    records = {s.name: sample_record(s, seed=1, list_len=1) for s in registry}
    by_size = sorted(registry, key=lambda s: -len(codec.encode(s, records[s.name])))
    chosen: list[AvroSchema] = by_size[:3] + [registry.get(n) for n in MOST_SENT]
    figures: list[Figure] = []
    for schema in chosen:
        record = records[schema.name]
        data = codec.encode(schema, record)
        short = schema.name.split(".")[-1]
        for suffix, c, target in (("", codec, TARGET_US), (" with fastavro alone", reference, None)):
            calls = {"encode": functools.partial(c.encode, schema, record), "decode": functools.partial(c.decode, data)}
            for op, call in calls.items():
                us = _per_record_us(call, repeat, number)
                figures.append(Figure(f"{short} ({op}, {len(data)} B){suffix}", round(us, 3), "us/record", target,
                                      "max"))
    write_result("codec", figures, notes=f"codec backend {avro_fast.BACKEND}; single-object encoding incl. 10-byte "
                 "header; best of 5 runs; sample records with every optional field set and one element per "
                 "array/map; the three largest schemas, then the two records the desk sends most")
    return figures


if __name__ == "__main__":
    run()
