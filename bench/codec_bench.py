"""Codec benchmark: µs per record to encode and to decode, for the three largest schemas."""

from __future__ import annotations

import functools
import timeit

from quorum_common.benchjson import Figure, write_result
from quorum_common.codec import AvroCodec
from quorum_common.schemas import default_catalog
from quorum_common.testing.samples import sample_record

TARGET_US = 3.0


def run(repeat: int = 5, number: int = 20_000) -> list[Figure]:
    """Measure the codec and write ``bench/results/codec.json``."""
    registry = default_catalog().registry
    codec = AvroCodec(registry)
    sized = []
    for schema in registry:
        record = sample_record(schema, seed=1, list_len=1)
        sized.append((len(codec.encode(schema, record)), schema, record))
    figures: list[Figure] = []
    for size, schema, record in sorted(sized, key=lambda x: -x[0])[:3]:
        data = codec.encode(schema, record)
        name = schema.name.split(".")[-1]
        enc_call = functools.partial(codec.encode, schema, record)
        dec_call = functools.partial(codec.decode, data)
        enc = min(timeit.repeat(enc_call, repeat=repeat, number=number)) / number * 1e6
        dec = min(timeit.repeat(dec_call, repeat=repeat, number=number)) / number * 1e6
        figures.append(Figure(f"{name} encode ({size} B)", round(enc, 3), "us/record", TARGET_US, "max"))
        figures.append(Figure(f"{name} decode ({size} B)", round(dec, 3), "us/record", TARGET_US, "max"))
    write_result("codec", figures, notes="single-object encoding incl. 10-byte header; best of 5 runs; "
                 "sample records with every optional field set and one element per array/map")
    return figures


if __name__ == "__main__":
    run()
