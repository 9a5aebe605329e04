"""Short replay windows of the real bundled data for the desk tests."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

TEST_MANDATE = Path(__file__).with_name("test_mandate.yaml")
SYMBOLS = ("AAPL", "MSFT", "JPM", "XOM", "KO", "PEP", "HD", "JNJ", "SPX", "VIX")


def window(start: str, end: str, **more: dict) -> dict[str, dict]:
    """Overrides that replay ``start``..``end`` with the test mandate."""
    overrides: dict[str, dict] = {
        "ingest": {"start": date.fromisoformat(start), "end": date.fromisoformat(end), "symbols": SYMBOLS},
        "manager": {"mandate_path": TEST_MANDATE},
    }
    for service, fields in more.items():
        overrides.setdefault(service, {}).update(fields)
    return overrides


@pytest.fixture
def desk_window():
    """The :func:`window` helper."""
    return window


CRASH = ("2007-06-01", "2009-06-30")
"""The 2008 crash window of the desk tests."""


@pytest.fixture
def crash_window():
    """Overrides of the 2008 crash window; ``in_full=True``: a portfolio that holds its targets in full until the
    drawdown lock fires (no exposure scaling: the scaled desk never reaches the lock in this window)."""
    def overrides(in_full: bool = False) -> dict[str, dict]:
        return window(*CRASH, **({"portfolio": {"exposure_scaling": False}} if in_full else {}))
    return overrides


@pytest.fixture
def short_window() -> dict[str, dict]:
    """Six months of 2007: enough history for signals, decisions and the first rebalances."""
    return window("2006-07-01", "2007-03-31")


@pytest.fixture
def desk_mandate() -> Path:
    """The small test mandate."""
    return TEST_MANDATE


@pytest.fixture
def desk_symbols() -> tuple[str, ...]:
    """The symbols the desk tests replay."""
    return SYMBOLS
