"""The Bollinger mean-reversion agent."""

from __future__ import annotations

import numpy as np
import pytest
from quorum_alpha.config import AlphaSettings

SETTINGS = AlphaSettings(agents=("bollinger",), bollinger_window=10, bollinger_k=2.0)


def noisy(seed: int, n: int) -> list[float]:
    return list(100.0 + np.random.default_rng(seed).normal(0.0, 0.5, n))


def test_spike_up_is_a_sell_and_z_is_exact(kit) -> None:
    closes = [*noisy(3, 30), 110.0]
    out, _ = kit.run_engine(SETTINGS, kit.series("AAA", closes))
    assert len(out) == len(closes) - 10 + 1
    window = np.array(closes[-10:])
    z = (closes[-1] - window.mean()) / window.std()
    assert out[-1]["inputs"]["zscore"] == pytest.approx(z)
    assert z > 2 and out[-1]["score"] == pytest.approx(-np.tanh(z / 2))
    assert out[-1]["score"] < -0.7 and out[-1]["confidence"] == 1.0
    assert "above the upper" in out[-1]["reason"]


def test_spike_down_is_a_buy(kit) -> None:
    out, _ = kit.run_engine(SETTINGS, kit.series("AAA", [*noisy(4, 30), 90.0]))
    assert out[-1]["score"] > 0.7 and "below the lower" in out[-1]["reason"]


def test_constant_prices_are_neutral(kit) -> None:
    out, _ = kit.run_engine(SETTINGS, kit.series("AAA", [50.0] * 15))
    assert len(out) == 6
    assert all(s["score"] == 0.0 and s["confidence"] == 0.0 for s in out)
