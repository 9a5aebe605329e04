"""Releasing schema versions: ``python -m quorum_common.schema_release [check|release]``.

Every version of a record that reaches a topic must stay readable after the schema changes (topics are
replayed for incident analysis, and services rebuild their state from their history at start). So
``schemas/avro/released/`` keeps every released version (:mod:`quorum_common.schemas`), and a new
version may only be released when each earlier one can be read into it: Avro schema resolution must
succeed on sample records of the earlier version (a field added needs a default, a type may only be
promoted, ...).

- ``check`` (what the tests run): exit 1 naming every current version that is not released yet, and every
  earlier version that could not be read into the current one.
- ``release``: the same checks for the earlier versions; if they pass, copy every unreleased current
  version into ``released/``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from io import BytesIO
from pathlib import Path

from fastavro import schemaless_reader, schemaless_writer

from quorum_common.paths import SCHEMAS_DIR
from quorum_common.schemas import RELEASED_DIR, AvroSchema, SchemaRegistry, released_file_name
from quorum_common.testing.samples import sample_record

SAMPLE_SEEDS = 3


def resolution_problem(old: AvroSchema, new: AvroSchema) -> str | None:
    """Why records written with ``old`` cannot be read into ``new`` (sample records with and without the optional
    fields, short and long lists), or ``None`` when they can."""
    for seed in range(SAMPLE_SEEDS):
        for fill_optional in (True, False):
            record = sample_record(old, seed, fill_optional=fill_optional, list_len=seed)
            buf = BytesIO()
            schemaless_writer(buf, old.parsed, record)
            buf.seek(0)
            try:
                schemaless_reader(buf, old.parsed, new.parsed)
            except Exception as exc:  # fastavro's SchemaResolutionError and friends
                return f"{old.path.name} cannot be read into the current {new.name}: {exc}"
    return None


def problems(registry: SchemaRegistry) -> list[str]:
    """Every earlier released version that cannot be read into its record's current version."""
    out: list[str] = []
    for old in registry.earlier_versions():
        problem = resolution_problem(old, registry.current(old))
        if problem is not None:
            out.append(problem)
    return out


def release(avro_dir: Path) -> list[Path]:
    """Copy the unreleased current versions of ``avro_dir`` into its ``released/`` folder; return the new files.
    Raises :class:`ValueError` listing the earlier versions that could not be read into the current ones."""
    registry = SchemaRegistry.from_dir(avro_dir)
    found = problems(registry)
    if found:
        raise ValueError("; ".join(found))
    target = avro_dir / RELEASED_DIR
    target.mkdir(exist_ok=True)
    written = []
    for schema in registry.unreleased():
        path = target / released_file_name(schema)
        shutil.copyfile(schema.path, path)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    """Command line: ``check`` or ``release`` (default folder: the checkout's ``schemas/avro``)."""
    parser = argparse.ArgumentParser(prog="schema_release", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("check", "release"))
    parser.add_argument("--dir", type=Path, default=SCHEMAS_DIR / "avro", help="schema folder")
    args = parser.parse_args(argv)
    if args.command == "release":
        try:
            written = release(args.dir)
        except ValueError as exc:
            print(f"not released: {exc}", file=sys.stderr)
            return 1
        for path in written:
            print(f"released {path.name}")
        return 0
    registry = SchemaRegistry.from_dir(args.dir)
    found = problems(registry) + [f"{s.path.name} is not released: run python -m quorum_common.schema_release "
                                  "release" for s in registry.unreleased()]
    for problem in found:
        print(problem, file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
