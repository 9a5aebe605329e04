"""The regime-weighted vote and the thresholds."""

from __future__ import annotations

import random

import pytest
from pydantic import ValidationError
from quorum_manager.ensemble import EnsembleConfig, Thresholds, Vote, absent, vote

SEED = EnsembleConfig()


def test_seed_weights_are_the_defaults() -> None:
    trending = SEED.weights["TRENDING"]
    assert (trending["ML_FORECAST"], trending["SENTIMENT"], trending["MOMENTUM"]) == (0.5, 0.3, 0.2)
    for label in ("MEAN_REVERTING", "HIGH_VOL", "CRISIS", "UNKNOWN"):
        table = SEED.weights[label]
        assert (table["ML_FORECAST"], table["SENTIMENT"], table["PAIRS"]) == (0.2, 0.1, 0.7)
    assert SEED.thresholds == Thresholds(strong_buy=0.6, buy=0.2, sell=-0.2, strong_sell=-0.6)
    assert SEED.muted == {"HIGH_VOL": ["MEAN_REVERSION"], "CRISIS": ["MEAN_REVERSION"]}


def test_seed_formula_when_every_input_is_present() -> None:
    ml, sent, stat = 0.9, -0.4, 0.5
    votes = [Vote("tft", "ML_FORECAST", ml, 1.0), Vote("finbert", "SENTIMENT", sent, 1.0),
             Vote("pairs", "PAIRS", stat, 1.0)]
    assert vote(votes, "TRENDING", SEED).combined_score == pytest.approx(0.5 * ml + 0.3 * sent + 0.2 * stat)
    assert vote(votes, "MEAN_REVERTING", SEED).combined_score == pytest.approx(0.2 * ml + 0.1 * sent + 0.7 * stat)


def test_contributions_sum_to_the_combined_score_and_stay_in_range() -> None:
    rng = random.Random(7)
    strategies = ["MOMENTUM", "MEAN_REVERSION", "PAIRS", "ML_FORECAST", "SENTIMENT"]
    for _ in range(200):
        votes = [Vote(f"a{k}", rng.choice(strategies), rng.uniform(-1, 1), rng.uniform(0, 1)) for k in range(4)]
        out = vote(votes, rng.choice(["TRENDING", "HIGH_VOL", "UNKNOWN"]), SEED)
        assert out.combined_score == pytest.approx(sum(b["contribution"] for b in out.breakdown))
        assert -1 <= out.combined_score <= 1 and 0 <= out.confidence <= 1


def test_weights_normalise_over_present_agents() -> None:
    out = vote([Vote("m", "MOMENTUM", 0.8, 0.5), absent("sentiment", "SENTIMENT")], "TRENDING", SEED)
    assert out.combined_score == pytest.approx(0.8 * 0.5)
    assert out.confidence == pytest.approx(0.5)


def test_absent_sentiment_votes_zero() -> None:
    out = vote([Vote("m", "MOMENTUM", 0.8, 1.0), absent("sentiment", "SENTIMENT")], "TRENDING", SEED)
    sentiment = next(b for b in out.breakdown if b["strategy"] == "SENTIMENT")
    assert (sentiment["score"], sentiment["contribution"], sentiment["signal_event_id"]) == (0.0, 0.0, None)
    assert sentiment["weight"] == 0.0 and not sentiment["muted"]


def test_absent_inputs_dilute_with_the_seeds_literal_formula() -> None:
    votes = [Vote("m", "MOMENTUM", 1.0, 1.0), absent("s", "SENTIMENT"), absent("f", "ML_FORECAST")]
    out = vote(votes, "TRENDING", SEED, count_absent=True)
    assert out.combined_score == pytest.approx(0.2)  # 0.2 * 1 + 0.3 * 0 + 0.5 * 0
    assert out.action == "HOLD"


@pytest.mark.parametrize("regime", ["HIGH_VOL", "CRISIS"])
def test_mean_reversion_is_muted_in_high_volatility(regime: str) -> None:
    votes = [Vote("bb", "MEAN_REVERSION", -1.0, 1.0), Vote("ema", "MOMENTUM", 0.5, 1.0)]
    out = vote(votes, regime, SEED)
    mr = next(b for b in out.breakdown if b["strategy"] == "MEAN_REVERSION")
    assert mr["muted"] and mr["weight"] == 0.0 and mr["contribution"] == 0.0
    assert regime in mr["mute_reason"]
    assert out.combined_score == pytest.approx(0.5)
    calm = vote(votes, "MEAN_REVERTING", SEED)
    assert not any(b["muted"] for b in calm.breakdown)
    assert calm.combined_score == pytest.approx(-0.25)


def test_only_muted_votes_hold() -> None:
    out = vote([Vote("bb", "MEAN_REVERSION", 1.0, 1.0)], "HIGH_VOL", SEED)
    assert (out.combined_score, out.confidence, out.action) == (0.0, 0.0, "HOLD")


def test_configured_weights_and_mutes_replace_the_seeds() -> None:
    cfg = EnsembleConfig(weights={"TRENDING": {"MOMENTUM": 1.0, "PAIRS": 3.0}}, muted={"TRENDING": ["RL"]})
    votes = [Vote("m", "MOMENTUM", 1.0, 1.0), Vote("p", "PAIRS", -1.0, 1.0), Vote("r", "RL", 1.0, 1.0)]
    out = vote(votes, "TRENDING", cfg)
    assert out.combined_score == pytest.approx((1.0 - 3.0) / 4.0)
    assert next(b for b in out.breakdown if b["strategy"] == "RL")["muted"]
    assert vote(votes, "CRISIS", cfg).combined_score == 0.0  # no table for CRISIS or UNKNOWN: no weight


@pytest.mark.parametrize(("score", "action"), [
    (1.0, "STRONG_BUY"), (0.6000001, "STRONG_BUY"), (0.6, "BUY"), (0.2000001, "BUY"), (0.2, "HOLD"),
    (0.0, "HOLD"), (-0.2, "HOLD"), (-0.2000001, "SELL"), (-0.6, "SELL"), (-0.6000001, "STRONG_SELL"),
    (-1.0, "STRONG_SELL"),
])
def test_thresholds_are_strict_as_in_the_seed(score: float, action: str) -> None:
    assert SEED.thresholds.action(score) == action


def test_seed_three_way_mapping_is_one_setting_away() -> None:
    seed_only = Thresholds(strong_buy=0.6, buy=0.6, sell=-0.6, strong_sell=-0.6)
    assert [seed_only.action(s) for s in (0.61, 0.6, 0.3, -0.3, -0.6, -0.61)] == [
        "STRONG_BUY", "HOLD", "HOLD", "HOLD", "HOLD", "STRONG_SELL"]


@pytest.mark.parametrize("bad", [{"buy": 0.7}, {"strong_buy": 1.2}, {"sell": 0.1}, {"strong_sell": -0.1}])
def test_inconsistent_thresholds_are_refused(bad: dict) -> None:
    with pytest.raises(ValidationError):
        Thresholds(**bad)
