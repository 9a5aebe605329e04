"""Fixtures for the sidecar end-to-end tests (see sidecar_harness.py)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sidecar_harness import Sidecar, render_config


@pytest.fixture
def make_sidecar(tmp_path: Path) -> Iterator:
    """Factory: make_sidecar(overrides) -> started Sidecar; all are stopped at teardown."""
    started: list[Sidecar] = []
    counter = [0]

    def factory(overrides: dict[str, dict[str, str]] | None = None) -> Sidecar:
        counter[0] += 1
        wd = tmp_path / f"sc{counter[0]}"
        wd.mkdir()
        sc = Sidecar(wd, render_config(overrides)).start()
        started.append(sc)
        return sc

    yield factory
    for sc in started:
        sc.stop()


@pytest.fixture
def sidecar(make_sidecar) -> Sidecar:
    return make_sidecar()
