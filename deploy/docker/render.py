"""Render every Python service's Dockerfile from ``service.Dockerfile.tmpl``.

``python deploy/docker/render.py`` writes ``services/<name>/Dockerfile``; ``--check`` exits 1 when a
Dockerfile differs from what the template gives (a test runs the check).
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = Path(__file__).with_name("service.Dockerfile.tmpl")


def _local_deps(service_dir: Path, seen: list[Path]) -> list[Path]:
    """The service folder and every local ``quorum-*`` package it depends on, dependencies first."""
    project = tomllib.loads((service_dir / "pyproject.toml").read_text())["project"]
    for dep in project.get("dependencies", []):
        name = re.split(r"[<>=!~ \[]", dep, maxsplit=1)[0]
        if name == "quorum-common":
            path = ROOT / "libs" / "common"
        elif name == "quorum-sidecar":
            path = ROOT / "services" / "risk_sidecar" / "client"
        elif name.startswith("quorum-"):
            path = ROOT / "services" / name.removeprefix("quorum-").replace("-", "_")
        else:
            continue
        if path not in seen:
            _local_deps(path, seen)
    if service_dir not in seen:
        seen.append(service_dir)
    return seen


def render(service_dir: Path) -> str:
    """The Dockerfile text of one service."""
    paths = [p.relative_to(ROOT).as_posix() for p in _local_deps(service_dir, [])]
    packages = []
    for rel in paths:
        packages += [f"{rel}/{d.name}" for d in sorted((ROOT / rel).glob("quorum_*"))
                     if d.is_dir() and d.suffix != ".egg-info"]
    return TEMPLATE.read_text().format(
        service=service_dir.name.replace("_", "-"),
        service_dir=service_dir.name,
        copy_manifests="\n".join(f"COPY {p}/pyproject.toml {p}/" for p in paths),
        make_stub_dirs="mkdir -p " + " ".join(packages),
        local_paths=" ".join(f"./{p}" for p in paths),
        copy_sources="\n".join(f"COPY {p} {p}" for p in paths),
    )


def python_services() -> list[Path]:
    """Every service folder with a ``pyproject.toml`` (the C++ sidecar has its own Dockerfile)."""
    return sorted(p.parent for p in (ROOT / "services").glob("*/pyproject.toml"))


def main(argv: list[str]) -> int:
    """Write the Dockerfiles, or with ``--check`` report the stale ones."""
    stale = []
    for service in python_services():
        text, path = render(service), service / "Dockerfile"
        if "--check" in argv:
            if not path.exists() or path.read_text() != text:
                stale.append(path.relative_to(ROOT).as_posix())
        else:
            path.write_text(text)
    if stale:
        print("stale Dockerfiles (run `make dockerfiles`): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
