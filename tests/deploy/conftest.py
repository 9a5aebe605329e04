"""Fixtures of the chart tests: Helm (installed by deploy/tools/install-helm.sh when missing; a failed
install fails the tests, never skips them) and the chart rendered for the default and the
production-like values (see helmlib.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from helmlib import INSTALL_HELM, VALUE_SETS, Rendered, StrictLoader, merged_values, run, template


@pytest.fixture(scope="session")
def helm() -> str:
    """Path of the pinned Helm, installed into .cache/bin by deploy/tools/install-helm.sh when missing."""
    proc = run(["bash", str(INSTALL_HELM)])
    assert proc.returncode == 0, f"deploy/tools/install-helm.sh failed:\n{proc.stderr[-3000:]}"
    path = proc.stdout.strip().splitlines()[-1]
    assert Path(path).is_file(), f"install-helm.sh printed {path!r}, which is not a file"
    return path


@pytest.fixture(scope="session")
def renders(helm: str) -> dict[str, Rendered]:
    """The chart rendered for each value set (fails, naming the set, when a render fails)."""
    out = {}
    for name, files in VALUE_SETS.items():
        proc = template(helm, files)
        assert proc.returncode == 0, f"helm template ({name} values) failed:\n{proc.stderr[-3000:]}"
        docs = [d for d in yaml.load_all(proc.stdout, Loader=StrictLoader) if d]
        out[name] = Rendered(name, merged_values(files), docs, proc.stdout)
    return out


@pytest.fixture(scope="session", params=sorted(VALUE_SETS))
def rendered(request: pytest.FixtureRequest, renders: dict[str, Rendered]) -> Rendered:
    """Each value set's render in turn."""
    return renders[request.param]
