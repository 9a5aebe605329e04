"""Fixtures of the execution service's tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from quorum_execution.config import ExecutionSettings
from quorum_execution.costs import CostModel
from quorum_execution.testing import message


@pytest.fixture
def costs() -> CostModel:
    """A cost model with every component non-zero."""
    return CostModel(half_spread_bps={"equity": 1.0, "crypto": 5.0, "default": 2.0}, fixed_bps=1.0, impact_bps=50.0,
                     adv_notional={"equity": 5e7, "default": 1e8}, fee_bps={"equity": 1.0, "crypto": 10.0,
                                                                           "default": 2.0}, min_fee=1.0)


@pytest.fixture
def settings() -> ExecutionSettings:
    """Service settings with a 10% participation cap."""
    return ExecutionSettings(max_participation=0.1)


@pytest.fixture
def feed() -> Callable[..., None]:
    """``feed(engine, (topic, record), ...)`` delivers records to an engine in the given order."""

    def _feed(engine: Any, *items: tuple[str, dict[str, Any]]) -> None:
        for topic, record in items:
            engine.on_message(message(topic, record))

    return _feed
