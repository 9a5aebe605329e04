"""Schema evolution: records written with an earlier released version stay readable, in today's shape."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from quorum_common.codec import AvroCodec, UnknownFingerprintError
from quorum_common.paths import SCHEMAS_DIR
from quorum_common.schema_release import main, release
from quorum_common.schemas import RELEASED_DIR, SchemaError, SchemaRegistry

ENVELOPE = [{"name": "event_id", "type": "string", "doc": "id"}, {"name": "ts_event", "type": "long", "doc": "t"},
            {"name": "ts_init", "type": "long", "doc": "t"}, {"name": "correlation_id", "type": "string", "doc": "c"}]


def write_version(avro_dir: Path, *extra_fields: dict) -> None:
    """Write the current version of ``quorum.v1.Probe``: the envelope, a price, and ``extra_fields``."""
    avro_dir.mkdir(parents=True, exist_ok=True)
    fields = [*ENVELOPE, {"name": "price", "type": "double", "doc": "p"}, *extra_fields]
    schema = {"type": "record", "name": "Probe", "namespace": "quorum.v1", "doc": "probe", "fields": fields}
    (avro_dir / "Probe.avsc").write_text(json.dumps(schema))


def probe(ts: int = 1) -> dict:
    return {"event_id": "e", "ts_event": ts, "ts_init": ts, "correlation_id": "c", "price": 101.5}


def test_the_checkout_releases_every_current_schema_and_reads_every_earlier_version_into_it() -> None:
    """The guard on every schema change: run ``python -m quorum_common.schema_release release`` after one."""
    assert main(["check", "--dir", str(SCHEMAS_DIR / "avro")]) == 0


def test_a_record_written_by_an_earlier_release_is_read_into_the_current_version(tmp_path: Path) -> None:
    avro = tmp_path / "avro"
    write_version(avro)
    assert main(["check", "--dir", str(avro)]) == 1  # not released yet
    fingerprint = SchemaRegistry.from_dir(avro).get("quorum.v1.Probe").fingerprint.hex()
    assert [p.name for p in release(avro)] == [f"Probe.{fingerprint}.avsc"]
    old_codec = AvroCodec(SchemaRegistry.from_dir(avro))
    written = old_codec.encode("quorum.v1.Probe", probe())
    write_version(avro, {"name": "venue", "type": "string", "default": "SIM", "doc": "added later"})
    assert main(["check", "--dir", str(avro)]) == 1  # the new version is not released
    assert len(release(avro)) == 1 and main(["check", "--dir", str(avro)]) == 0
    schema, record = AvroCodec(SchemaRegistry.from_dir(avro)).decode(written)
    assert schema.name == "quorum.v1.Probe" and schema.path == avro / "Probe.avsc"  # today's version
    assert record == {**probe(), "venue": "SIM"}
    assert release(avro) == []  # nothing new


def test_encoding_with_an_earlier_version_writes_that_version(tmp_path: Path) -> None:
    # the codec's fast path holds current versions only: an earlier one passed in must not be written as today's
    avro = tmp_path / "avro"
    write_version(avro)
    release(avro)
    write_version(avro, {"name": "venue", "type": "string", "default": "SIM", "doc": "added later"})
    release(avro)
    registry = SchemaRegistry.from_dir(avro)
    (old,) = registry.earlier_versions()
    codec = AvroCodec(registry)
    assert codec.fast_schemas == {"quorum.v1.Probe"}
    written = codec.encode(old, probe())
    assert written[2:10] == old.fingerprint
    assert codec.decode(written)[1] == {**probe(), "venue": "SIM"}
    assert codec.encode("quorum.v1.Probe", probe())[2:10] == registry.get("quorum.v1.Probe").fingerprint


def test_a_change_that_earlier_records_cannot_be_read_into_is_refused_naming_the_field(tmp_path: Path) -> None:
    avro = tmp_path / "avro"
    write_version(avro)
    release(avro)
    write_version(avro, {"name": "venue", "type": "string", "doc": "added without a default"})
    with pytest.raises(ValueError, match=r"Probe.*venue"):
        release(avro)
    assert main(["check", "--dir", str(avro)]) == 1
    assert len(list((avro / RELEASED_DIR).glob("*.avsc"))) == 1


def test_without_its_released_version_an_old_record_is_a_clear_error(tmp_path: Path) -> None:
    avro = tmp_path / "avro"
    write_version(avro)
    written = AvroCodec(SchemaRegistry.from_dir(avro)).encode("quorum.v1.Probe", probe())
    write_version(avro, {"name": "venue", "type": "string", "default": "SIM", "doc": "added later"})
    with pytest.raises(UnknownFingerprintError):
        AvroCodec(SchemaRegistry.from_dir(avro)).decode(written)


def test_a_released_file_must_be_named_by_its_content_and_have_a_current_record(tmp_path: Path) -> None:
    avro = tmp_path / "avro"
    write_version(avro)
    (written,) = release(avro)
    misnamed = written.rename(written.with_name("Probe.0000000000000000.avsc"))
    with pytest.raises(SchemaError, match="its content is Probe"):
        SchemaRegistry.from_dir(avro)
    misnamed.rename(written)
    (avro / "Probe.avsc").write_text((avro / "Probe.avsc").read_text().replace('"Probe"', '"Renamed"'))
    with pytest.raises(SchemaError, match=r"no current schema quorum\.v1\.Probe"):
        SchemaRegistry.from_dir(avro)
