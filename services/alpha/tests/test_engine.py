"""The alpha engine: routing, schema-valid records over the bus, determinism, no look-ahead, bad input."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from quorum_alpha.config import AlphaSettings
from quorum_alpha.engine import AlphaEngine
from quorum_common.bus.message import Message
from quorum_common.runtime.config import ConfigError, load_settings

SETTINGS = AlphaSettings(ema_fast_span=3, ema_slow_span=8, breakout_window=10, bollinger_window=10,
                         pairs=("YY/XX",), pairs_window=60, pairs_test_every=10, pairs_adf_lags=1)
N = 120


def market(kit, seed: int = 2, n: int = N, tail_seed: int | None = None, cut: int = 0) -> list[dict]:
    """A cointegrated YY/XX pair, a trending unknown symbol ZZZ and the non-tradable index SPX.

    With ``tail_seed``, every bar from day ``cut`` on is redrawn from another seed.
    """
    y, x = kit.cointegrated_pair(n, seed, {90: 1.0, 100: 0.0})
    z = 50 * np.exp(np.cumsum(np.random.default_rng(seed + 1).normal(0.001, 0.02, n)))
    if tail_seed is not None:
        y2, x2 = kit.cointegrated_pair(n, tail_seed)
        y[cut:], x[cut:], z[cut:] = y2[cut:], x2[cut:], z[cut:] * 1.5
    return kit.interleave(kit.series("YY", y), kit.series("XX", x), kit.series("ZZZ", z), kit.series("SPX", z))


def test_records_match_the_schema_over_the_in_process_bus(kit) -> None:
    bars = market(kit)
    signals, bus = kit.run_bus(SETTINGS, bars)
    assert bus.dead_letters == [] and signals
    by_key = {(b["symbol"], b["ts_event"]): b for b in bars}
    assert {s["strategy"] for s in signals} == {"MOMENTUM", "MEAN_REVERSION", "PAIRS"}
    assert any(s["strategy"] == "PAIRS" and s["score"] != 0 for s in signals)
    for s in signals:
        source = by_key[(s["symbol"], s["ts_event"])]
        assert s["data_cutoff_ts"] == s["ts_event"] == s["ts_init"]
        assert s["correlation_id"] == source["event_id"] and s["interval"] == "1d"
        assert -1 <= s["score"] <= 1 and 0 <= s["confidence"] <= 1
        assert all(math.isfinite(v) for v in s["inputs"].values())
    assert len({s["event_id"] for s in signals}) == len(signals)


def test_one_signal_per_agent_per_symbol_per_bar_after_warm_up_and_none_for_indices(kit) -> None:
    signals, _ = kit.run_engine(SETTINGS, market(kit))
    counts = Counter((s["agent_id"], s["symbol"]) for s in signals)
    for symbol in ("YY", "XX", "ZZZ"):
        assert counts["alpha.momentum.ema_crossover", symbol] == N - 8 + 1
        assert counts["alpha.momentum.breakout", symbol] == N - 10
        assert counts["alpha.mean_reversion.bollinger", symbol] == N - 10 + 1
    assert not [s for s in signals if s["symbol"] == "SPX"]
    assert counts["alpha.pairs.YY-XX", "YY"] == counts["alpha.pairs.YY-XX", "XX"] > 0
    assert not [k for k in counts if k[0].startswith("alpha.pairs") and k[1] == "ZZZ"]


def test_same_input_gives_identical_records(kit) -> None:
    first, _ = kit.run_bus(SETTINGS, market(kit))
    second, _ = kit.run_bus(SETTINGS, market(kit))
    assert first == second


def test_no_look_ahead_changing_later_bars_leaves_earlier_signals_alone(kit) -> None:
    cut = 95
    base, _ = kit.run_engine(SETTINGS, market(kit))
    changed, _ = kit.run_engine(SETTINGS, market(kit, tail_seed=9, cut=cut))
    t_cut = kit.T0 + cut * kit.DAY
    before = [s for s in base if s["ts_event"] < t_cut]
    assert before == [s for s in changed if s["ts_event"] < t_cut]
    assert [s for s in base if s["ts_event"] >= t_cut] != [s for s in changed if s["ts_event"] >= t_cut]


def test_malformed_bars_go_to_the_dead_letter_topic_and_the_engine_goes_on(kit) -> None:
    good = kit.series("AAA", [100.0 + i for i in range(12)])
    bad = [{**kit.bar("AAA", 3, 100.0), "close": float("nan")}, {**kit.bar("AAA", 4, 100.0), "low": 120.0},
           {**kit.bar("AAA", 5, 100.0), "volume": -1.0}, {**kit.bar("AAA", 6, 100.0), "open": 0.0}]
    pub = kit.Collect()
    engine = AlphaEngine(AlphaSettings(agents=("momentum",), ema_fast_span=2, ema_slow_span=4), pub)
    for b in [*bad, *good]:
        engine.on_message(Message("md.bars", b["symbol"], b, "quorum.v1.BarClosed"))
    assert [d[2] for d in pub.dead] == ["invalid bar"] * 4
    assert "finite" in pub.dead[0][3] and "below low" in pub.dead[1][3] and "volume" in pub.dead[2][3]
    assert len(pub.out) == 12 - 4 + 1


def test_redelivered_and_out_of_order_bars_are_skipped(kit) -> None:
    bars = kit.series("AAA", [100.0 + math.sin(i) for i in range(30)])
    once, _ = kit.run_engine(SETTINGS, bars)
    twice, engine = kit.run_engine(SETTINGS, [*bars[:20], bars[12], *bars[19:]])
    assert once == twice and engine.stale_bars == 2


def test_agent_families_can_be_chosen(kit) -> None:
    signals, _ = kit.run_engine(SETTINGS.model_copy(update={"agents": ("bollinger",)}), market(kit))
    assert {s["agent_id"] for s in signals} == {"alpha.mean_reversion.bollinger"}


@pytest.mark.parametrize(("env", "value", "field"), [
    ("QUORUM_PAIRS_ENTRY_Z", "4.0", "pairs_entry_z"),
    ("QUORUM_PAIRS_EXIT_Z", "2.5", "pairs_exit_z"),
    ("QUORUM_BOLLINGER_WINDOW", "1", "QUORUM_BOLLINGER_WINDOW"),
    ("QUORUM_BREAKOUT_WINDOW", "0", "QUORUM_BREAKOUT_WINDOW"),
    ("QUORUM_PAIRS", '["KO-PEP"]', "QUORUM_PAIRS"),
    ("QUORUM_PAIRS", '["KO/KO"]', "QUORUM_PAIRS"),
    ("QUORUM_PAIRS_PVALUE", "1.5", "QUORUM_PAIRS_PVALUE"),
    ("QUORUM_PAIRS_TEST_EVERY", "300", "pairs_test_every"),
    ("QUORUM_AGENTS", '["astrology"]', "QUORUM_AGENTS"),
])
def test_invalid_settings_name_the_field(monkeypatch: pytest.MonkeyPatch, env: str, value: str, field: str) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError, match=field):
        load_settings(AlphaSettings)


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUORUM_PAIRS", '["KO/PEP", "XOM/CVX"]')
    monkeypatch.setenv("QUORUM_PAIRS_SEARCH", "true")
    settings = load_settings(AlphaSettings)
    assert settings.pair_legs() == [("KO", "PEP"), ("XOM", "CVX")] and settings.pairs_search
