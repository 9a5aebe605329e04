"""The pairs agent: state machine, Engle–Granger on a rolling window, leg signals, alignment by bar time."""

from __future__ import annotations

import numpy as np
import pytest
from quorum_alpha.agents import pairs as pairs_module
from quorum_alpha.agents.pairs import FLAT, LONG_SPREAD, SHORT_SPREAD, PairRules, same_sector_pairs, step_position
from quorum_alpha.config import AlphaSettings
from quorum_alpha.engine import AlphaEngine, build_agents
from quorum_common.bus.message import Message
from quorum_common.engine import envelope

SETTINGS = AlphaSettings(agents=("pairs",), pairs=("YY/XX",), pairs_window=120, pairs_test_every=20)
SHOCKS = {150: 0.8, 151: 0.75, 152: 0.0, 160: -0.8, 161: -2.0, 162: -0.8, 163: 0.0, 170: -0.8}
RULES = PairRules()


def day(kit, s: dict) -> int:
    return (s["ts_event"] - kit.T0) // kit.DAY


def pair_bars(kit, n: int = 200, seed: int = 1, shocks: dict[int, float] | None = None) -> list[dict]:
    y, x = kit.cointegrated_pair(n, seed, SHOCKS if shocks is None else shocks)
    return kit.interleave(kit.series("YY", y), kit.series("XX", x))


def y_leg(out: list[dict]) -> dict[int, dict]:
    return {s["ts_event"]: s for s in out if s["symbol"] == "YY"}


@pytest.mark.parametrize(("position", "armed", "z", "coint", "expected", "event"), [
    (FLAT, True, 2.1, True, SHORT_SPREAD, "enter short"),
    (FLAT, True, -2.1, True, LONG_SPREAD, "enter long"),
    (FLAT, True, 1.9, True, FLAT, "flat"),
    (FLAT, True, 3.6, True, FLAT, "flat"),  # already beyond the stop band
    (FLAT, True, 2.5, False, FLAT, "flat"),  # not cointegrated: no trade
    (FLAT, False, 2.5, True, FLAT, "flat"),  # disarmed after a stop
    (SHORT_SPREAD, True, 1.0, True, SHORT_SPREAD, "hold short"),
    (SHORT_SPREAD, True, 0.4, True, FLAT, "exit: z reverted"),
    (SHORT_SPREAD, True, -1.5, True, FLAT, "exit: z reverted"),  # overshoot through 0
    (LONG_SPREAD, True, -0.3, True, FLAT, "exit: z reverted"),
    (LONG_SPREAD, True, -3.6, True, FLAT, "stop"),
    (LONG_SPREAD, True, -2.5, False, FLAT, "exit: cointegration lost"),
])
def test_state_machine(position: int, armed: bool, z: float, coint: bool, expected: int, event: str) -> None:
    move = step_position(position, armed, z, coint, RULES)
    assert move.position == expected and move.event.startswith(event)


def test_a_stop_disarms_until_z_is_back_inside_the_entry_band() -> None:
    move = step_position(SHORT_SPREAD, True, 3.6, True, RULES)
    assert not move.armed
    assert step_position(FLAT, move.armed, 2.5, True, RULES).position == FLAT
    rearmed = step_position(FLAT, move.armed, 1.0, True, RULES)
    assert rearmed.armed and step_position(FLAT, rearmed.armed, 2.5, True, RULES).position == SHORT_SPREAD


def test_cointegrated_pair_enters_beyond_2_sigma_exits_near_0_and_stops_beyond_3_5(kit) -> None:
    out, engine = kit.run_engine(SETTINGS, pair_bars(kit))
    trader = engine.agents[0].traders[0]
    assert trader.p_value < 0.01 and trader.hedge_ratio == pytest.approx(0.5, abs=0.02)
    assert min(day(kit, s) for s in out) == SETTINGS.pairs_window - 1  # first test when the window is full
    ys = {day(kit, s): s for s in y_leg(out).values()}
    traded = {d: (s["score"], s["reason"]) for d, s in ys.items() if s["score"] != 0 or "flat" not in s["reason"]}
    assert sorted(traded) == [150, 151, 152, 160, 161, 170, 171]
    assert ys[150]["score"] < 0 and ys[150]["inputs"]["z"] > 2 and "enter short" in ys[150]["reason"]
    assert ys[151]["score"] < 0 and "hold short" in ys[151]["reason"]
    assert ys[152]["score"] == 0 and abs(ys[152]["inputs"]["z"]) < 0.5 and "exit" in ys[152]["reason"]
    assert ys[160]["score"] > 0 and ys[160]["inputs"]["z"] < -2 and "enter long" in ys[160]["reason"]
    assert ys[161]["score"] == 0 and ys[161]["inputs"]["z"] < -3.5 and "stop" in ys[161]["reason"]
    assert ys[162]["score"] == 0 and ys[162]["inputs"]["z"] < -2  # no re-entry right after the stop
    assert ys[170]["score"] > 0 and "enter long" in ys[170]["reason"]


def test_both_legs_get_opposite_scores_scaled_by_the_hedge_ratio(kit) -> None:
    out, _ = kit.run_engine(SETTINGS, pair_bars(kit))
    at = [s for s in out if day(kit, s) == 150]
    y, x = (next(s for s in at if s["symbol"] == sym) for sym in ("YY", "XX"))
    b = y["hedge_ratio"]
    assert y["paired_symbol"] == "XX" and x["paired_symbol"] == "YY" and x["hedge_ratio"] == pytest.approx(1 / b)
    assert np.sign(y["score"]) == -np.sign(x["score"]) != 0
    y_close, x_close = (next(bb["close"] for bb in pair_bars(kit) if bb["symbol"] == s and
                             bb["ts_event"] == y["ts_event"]) for s in ("YY", "XX"))
    assert abs(x["score"] / y["score"]) == pytest.approx(b * x_close / y_close)
    assert {"z", "p_value", "hedge_ratio", "spread"} <= set(y["inputs"]) and y["inputs"] == x["inputs"]
    assert y["strategy"] == x["strategy"] == "PAIRS" and y["agent_id"] == "alpha.pairs.YY-XX"
    assert 0.99 <= y["confidence"] <= 1.0


def test_each_leg_is_correlated_with_its_own_bar(kit) -> None:
    bars = pair_bars(kit)
    out, _ = kit.run_engine(SETTINGS, bars)
    ids = {(b["symbol"], b["ts_event"]): b["event_id"] for b in bars}
    assert all(s["correlation_id"] == ids[(s["symbol"], s["ts_event"])] for s in out)


def test_independent_random_walks_never_trade(kit) -> None:
    rng = np.random.default_rng(5)
    y, x = 100 + np.cumsum(rng.normal(0, 1, 400)), 100 + np.cumsum(rng.normal(0, 1, 400))
    out, engine = kit.run_engine(SETTINGS, kit.interleave(kit.series("YY", y), kit.series("XX", x)))
    assert engine.agents[0].traders[0].tested
    assert all(s["score"] == 0 for s in out)


def test_lost_cointegration_exits_an_open_position(kit, monkeypatch: pytest.MonkeyPatch) -> None:
    real, broken = pairs_module.engle_granger, {"now": False}

    def engle_granger(y: np.ndarray, x: np.ndarray, lags: int | None) -> tuple[float, float, float]:
        p, a, b = real(y, x, lags)
        return (0.5 if broken["now"] else p), a, b

    monkeypatch.setattr(pairs_module, "engle_granger", engle_granger)
    pub = kit.Collect()
    engine = AlphaEngine(SETTINGS.model_copy(update={"pairs_test_every": 1}), pub)
    for b in pair_bars(kit, shocks={150: 0.8, 151: 0.75, 152: 0.8}):
        broken["now"] = day(kit, b) >= 151
        engine.on_message(Message("md.bars", b["symbol"], b, "quorum.v1.BarClosed"))
    ys = {day(kit, s): s for s in y_leg(pub.out).values()}
    assert ys[150]["score"] < 0 and "enter short" in ys[150]["reason"]
    assert ys[151]["score"] == 0 and "cointegration lost" in ys[151]["reason"]
    assert ys[151]["inputs"]["p_value"] == 0.5
    assert max(ys) == 151  # flat and not cointegrated: the pair has no opinion, even at z > 2 on day 152


def lag(bars: list[dict], behind: str, by: int) -> list[dict]:
    """The same bars as read from two Kafka partitions, the ``behind`` symbol's running ``by`` bars late."""
    ahead = [b for b in bars if b["symbol"] != behind]
    late = [b for b in bars if b["symbol"] == behind]
    out: list[dict] = []
    for i in range(max(len(ahead), len(late) + by)):
        out += ahead[i:i + 1] + (late[i - by:i - by + 1] if i >= by else [])
    assert sorted(out, key=lambda b: b["event_id"]) == sorted(bars, key=lambda b: b["event_id"])
    return out


@pytest.mark.parametrize(("behind", "by"), [("XX", 7), ("YY", 40), ("XX", 1)])
def test_kafka_interleaving_and_missing_bars_give_the_same_signals(kit, behind: str, by: int) -> None:
    bars = pair_bars(kit)
    gap = [b for b in bars if not (b["symbol"] == "XX" and day(kit, b) in (155, 156))
           and not (b["symbol"] == "YY" and day(kit, b) == 158)]
    by_id = lambda s: s["event_id"]  # noqa: E731
    for data in (bars, gap):
        ordered, _ = kit.run_engine(SETTINGS, data)
        shuffled, engine = kit.run_engine(SETTINGS, lag(data, behind, by))
        assert ordered and sorted(ordered, key=by_id) == sorted(shuffled, key=by_id)
        assert len(engine.agents[0].traders[0]._pending) <= 1
    with_gap, _ = kit.run_engine(SETTINGS, gap)
    assert not [s for s in with_gap if day(kit, s) in (155, 156, 158)]
    assert len(with_gap) == len(kit.run_engine(SETTINGS, bars)[0]) - 6


def test_same_sector_search_adds_universe_pairs() -> None:
    found = same_sector_pairs()
    assert ("KO", "PEP") in found and ("JPM", "BAC") not in found and ("BAC", "JPM") in found
    assert not [p for p in found if "SPX" in p or "VIX" in p]
    agents = build_agents(AlphaSettings(agents=("pairs",), pairs=("PEP/KO",), pairs_search=True))
    legs = [t.legs for t in agents[0].traders]
    assert legs[0] == ("PEP", "KO") and ("KO", "PEP") not in legs and ("PG", "WMT") in legs
    assert [t.legs for t in build_agents(AlphaSettings(agents=("pairs",), pairs=("SPX/KO",)))[0].traders] == []


def test_ko_pep_on_real_sp500_data_finds_cointegration_and_trades(kit) -> None:
    from skfolio.datasets import load_sp500_dataset

    prices = load_sp500_dataset()[["KO", "PEP"]]
    bars = []
    for ts, row in zip(prices.index, prices.itertuples(index=False), strict=True):
        t = int(ts.value)
        for sym, close in (("KO", float(row.KO)), ("PEP", float(row.PEP))):
            bars.append({**kit.bar(sym, 0, close), **envelope(t, "bar", sym, "1d"), "ts_open": t})
    out, _ = kit.run_engine(AlphaSettings(agents=("pairs",), pairs_adf_lags=1), bars)
    assert out and {s["symbol"] for s in out} == {"KO", "PEP"}
    assert min(s["inputs"]["p_value"] for s in out) < 0.05
    entries = [s for s in out if s["symbol"] == "KO" and "enter" in s["reason"]]
    assert entries and all(abs(s["inputs"]["z"]) > 2 for s in entries)
    assert all(s["inputs"]["p_value"] <= 0.05 for s in entries)
    assert all(s["ts_event"] == s["data_cutoff_ts"] for s in out)
