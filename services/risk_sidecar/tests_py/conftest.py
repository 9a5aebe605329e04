"""Fixtures for the sidecar end-to-end tests: the REAL binary, through ``quorum_sidecar.testing``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from quorum_sidecar.testing import Sidecar, SidecarFleet


@pytest.fixture
def make_sidecar(tmp_path: Path) -> Iterator[Callable[..., Sidecar]]:
    """Factory: ``make_sidecar(overrides)`` -> a started Sidecar; all are stopped at teardown."""
    with SidecarFleet(tmp_path) as fleet:
        yield fleet.start


@pytest.fixture
def sidecar(make_sidecar: Callable[..., Sidecar]) -> Sidecar:
    """One started sidecar with the base configuration."""
    return make_sidecar()
