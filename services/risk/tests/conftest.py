"""Fixtures of the risk service's tests."""

from __future__ import annotations

import pytest
from quorum_risk.testing import Harness, market


@pytest.fixture
def h() -> Harness:
    """A risk engine with the test mandate and one bar per symbol, no positions."""
    return market(Harness())
