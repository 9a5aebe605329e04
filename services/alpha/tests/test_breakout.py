"""The Donchian breakout agent."""

from __future__ import annotations

import math

import pytest
from quorum_alpha.config import AlphaSettings

SETTINGS = AlphaSettings(agents=("breakout",), breakout_window=5, breakout_score_scale=5.0)


def ranging(kit, n: int) -> list[dict]:
    """Bars oscillating between 99 and 101 (highs 101.5, lows 98.5)."""
    return [kit.bar("AAA", i, 100.0 + (1 if i % 2 else -1), high=101.5, low=98.5) for i in range(n)]


def test_first_signal_after_a_full_channel_and_zero_inside(kit) -> None:
    out, _ = kit.run_engine(SETTINGS, ranging(kit, 12))
    assert len(out) == 12 - 5
    assert all(s["score"] == 0.0 and "inside" in s["reason"] for s in out)
    assert out[0]["inputs"]["channel_high"] == 101.5 and out[0]["inputs"]["channel_low"] == 98.5


def test_close_above_the_channel_high_is_positive(kit) -> None:
    bars = [*ranging(kit, 10), kit.bar("AAA", 10, 103.0, high=103.5, low=100.0)]
    out, _ = kit.run_engine(SETTINGS, bars)
    last = out[-1]
    assert last["score"] > 0 and "above" in last["reason"]
    assert last["score"] == pytest.approx(math.tanh(5.0 * (103.0 - 101.5) / 3.0))
    assert last["inputs"]["channel_high"] == 101.5  # the breakout bar's own high is not in its channel


def test_close_below_the_channel_low_is_negative(kit) -> None:
    out, _ = kit.run_engine(SETTINGS, [*ranging(kit, 10), kit.bar("AAA", 10, 95.0, high=99.0, low=94.0)])
    assert -1 <= out[-1]["score"] < 0 and "below" in out[-1]["reason"]


def test_confidence_is_the_volume_confirmation(kit) -> None:
    base = ranging(kit, 10)
    loud, _ = kit.run_engine(SETTINGS, [*base, kit.bar("AAA", 10, 103.0, volume=3000.0)])
    quiet, _ = kit.run_engine(SETTINGS, [*base, kit.bar("AAA", 10, 103.0, volume=250.0)])
    assert loud[-1]["confidence"] == 1.0
    assert quiet[-1]["confidence"] == pytest.approx(0.25)
    silent, _ = kit.run_engine(SETTINGS, [kit.bar("AAA", i, 100.0 + i, volume=0.0) for i in range(8)])
    assert all(s["confidence"] == 0.5 for s in silent)
