"""The EMA-crossover momentum agent."""

from __future__ import annotations

import pytest
from quorum_alpha.config import AlphaSettings
from quorum_common.runtime.config import ConfigError, load_settings

EMA_ONLY = {"agents": ("momentum",), "ema_fast_span": 3, "ema_slow_span": 6}


def test_rising_prices_give_positive_scores_after_warm_up(kit) -> None:
    out, _ = kit.run_engine(AlphaSettings(**EMA_ONLY), kit.series("AAA", [100 + i for i in range(20)]))
    assert len(out) == 20 - 6 + 1
    assert all(0 < s["score"] <= 1 and s["strategy"] == "MOMENTUM" for s in out)
    assert out[-1]["inputs"]["ema_fast"] > out[-1]["inputs"]["ema_slow"]
    assert [s["confidence"] for s in out] == sorted(s["confidence"] for s in out)
    assert out[0]["confidence"] == pytest.approx(6 / 12) and out[-1]["confidence"] == 1.0


def test_falling_prices_give_negative_scores(kit) -> None:
    out, _ = kit.run_engine(AlphaSettings(**EMA_ONLY), kit.series("AAA", [100 - i for i in range(20)]))
    assert out and all(-1 <= s["score"] < 0 for s in out)
    assert "below" in out[-1]["reason"]


def test_ema_values_follow_the_recursion(kit) -> None:
    closes = [100.0, 103.0, 99.0, 104.0, 108.0, 101.0]
    out, _ = kit.run_engine(AlphaSettings(**EMA_ONLY), kit.series("AAA", closes))
    fast = slow = closes[0]
    for c in closes:
        fast += 0.5 * (c - fast)
        slow += 2 / 7 * (c - slow)
    assert out[-1]["inputs"]["ema_fast"] == pytest.approx(fast)
    assert out[-1]["inputs"]["ema_slow"] == pytest.approx(slow)


def test_fast_span_must_be_below_slow_span(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUORUM_EMA_FAST_SPAN", "30")
    with pytest.raises(ConfigError, match="ema_fast_span"):
        load_settings(AlphaSettings)
