"""The regime engine end to end: warm-up, HIGH_VOL after the switch only, no look-ahead, schema, real data."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from quorum_common.bus.inprocess import InProcessBus
from quorum_common.bus.message import Message
from quorum_common.runtime.config import ConfigError, load_settings
from quorum_common.runtime.service import wire_inprocess
from quorum_regime.app import SPEC
from quorum_regime.config import RegimeSettings
from quorum_regime.engine import RegimeEngine
from quorum_regime.synthetic import DAY_NS, T0, bar_record, bar_records, calm_then_volatile

SWITCH, N_BARS = 300, 420
FAST = {"window_bars": 250, "min_fit_bars": 120, "refit_every": 21, "vol_window": 21}


class Collect:
    """A publisher that keeps what the engine emits."""

    def __init__(self) -> None:
        self.out: list[tuple[str, str | None, dict[str, Any]]] = []
        self.dead: list[str] = []

    def publish(self, topic: str, record: dict[str, Any], *, key: str | None = None) -> None:
        self.out.append((topic, key, record))

    def dead_letter(self, topic: str, payload: Any, reason: str, *, key: str | None = None, error: str = "") -> None:
        self.dead.append(reason)


def run(records: list[dict[str, Any]], **overrides: Any) -> tuple[RegimeEngine, Collect]:
    pub = Collect()
    engine = RegimeEngine(RegimeSettings(**{**FAST, **overrides}), pub)
    for rec in records:
        engine.on_message(Message("md.bars", rec["symbol"], rec, "quorum.v1.BarClosed"))
    return engine, pub


def day(rec: dict[str, Any]) -> int:
    return (rec["ts_event"] - T0) // DAY_NS


@pytest.fixture(scope="module")
def market() -> tuple[list[float], list[float]]:
    """SPX closes (0.5 % daily volatility, 3 % from bar ``SWITCH``) and a matching VIX, seeded."""
    return calm_then_volatile(N_BARS, SWITCH, seed=11)


@pytest.fixture(scope="module")
def result(market) -> tuple[RegimeEngine, Collect]:
    closes, vix = market
    return run(bar_records(closes, vix))


def test_nothing_is_published_before_the_first_fit(result) -> None:
    engine, pub = result
    first = day(pub.out[0][2])
    assert first == FAST["vol_window"] + FAST["min_fit_bars"] - 1  # returns need one bar, RV vol_window returns
    assert pub.out[0][2]["fitted_ts"] == pub.out[0][2]["ts_event"]
    assert len(pub.out) == N_BARS - first
    assert engine.fits == 1 + (len(pub.out) - 1) // FAST["refit_every"]


def test_label_switches_to_high_vol_after_the_switch_and_not_before(result) -> None:
    _, pub = result
    labels = {day(r): r["label"] for _, _, r in pub.out}
    assert all(label != "HIGH_VOL" for d, label in labels.items() if d < SWITCH)
    high = sorted(d for d, label in labels.items() if label == "HIGH_VOL")
    assert SWITCH <= high[0] <= SWITCH + 21
    assert all(labels[d] == "HIGH_VOL" for d in range(SWITCH + 30, N_BARS))


def test_records_are_consistent(result) -> None:
    _, pub = result
    prev = None
    for topic, key, rec in pub.out:
        assert (topic, key, rec["scope"]) == ("regime.state", "market", "market")
        assert rec["probabilities"][rec["state"]] == max(rec["probabilities"])
        assert sum(rec["probabilities"]) == pytest.approx(1.0)
        assert rec["label"] == rec["state_labels"][rec["state"]]
        assert rec["data_cutoff_ts"] == rec["ts_event"] >= rec["fitted_ts"]
        assert set(rec["features"]) == {"return", "realised_vol", "vix"}
        assert rec["previous_label"] == (prev["label"] if prev else None)
        assert rec["is_transition"] == (prev is None or prev["label"] != rec["label"])
        assert rec["correlation_id"] == bar_record("SPX", day(rec), 1.0)["event_id"]
        prev = rec
    assert any(r["is_transition"] for _, _, r in pub.out[1:])


@pytest.mark.parametrize("cut", [SWITCH - 1, SWITCH + 10, 400])
def test_no_look_ahead_truncating_after_t_keeps_the_state_at_t(market, result, cut: int) -> None:
    closes, vix = market
    _, full = result
    _, short = run(bar_records(closes[: cut + 1], vix[: cut + 1]))
    at_cut = [r for _, _, r in full.out if day(r) == cut]
    assert short.out[-1][2] == at_cut[0]


def test_replay_is_deterministic(market, result) -> None:
    closes, vix = market
    _, again = run(bar_records(closes, vix))
    assert again.out == result[1].out


def test_the_service_metrics_do_not_change_what_the_engine_publishes(market, result) -> None:
    """The regime service wraps the engine's refit to time it (``instrument``); the records must be the
    ones of the bare engine. A wrapper that dropped the refit's answer stepped the filter twice on every
    refit row, so the desk in its own processes parted from the embedded desk (probabilities first)."""
    from quorum_common.runtime.metrics import ServiceMetrics
    from quorum_regime.metrics import instrument

    closes, vix = market
    pub = Collect()
    engine = RegimeEngine(RegimeSettings(**FAST), pub)
    instrument(engine, ServiceMetrics("regime_probe"))
    for rec in bar_records(closes, vix):
        engine.on_message(Message("md.bars", rec["symbol"], rec, "quorum.v1.BarClosed"))
    assert engine.fits > 1, "the window must hold refits"
    assert pub.out == result[1].out


def test_vix_before_or_after_the_market_bar_gives_the_same_output(market, result) -> None:
    closes, vix = market
    _, swapped = run(bar_records(closes, vix, vix_first=True))
    assert swapped.out == result[1].out


def test_without_vix_the_model_uses_two_features(market) -> None:
    closes, _ = market
    _, pub = run(bar_records(closes[:200]))
    assert pub.out and all(set(r["features"]) == {"return", "realised_vol"} for _, _, r in pub.out)


def test_expanding_window_fits_on_every_row(market) -> None:
    closes, vix = market
    _, pub = run(bar_records(closes[:240], vix[:240]), window_mode="expanding", window_bars=120)
    assert [r["window_bars"] for _, _, r in pub.out][::21] == [120 + 21 * k for k in range(len(pub.out[::21]))]


def test_other_symbols_and_intervals_are_ignored(market) -> None:
    closes, vix = market
    noise = [bar_record("AAPL", i, 100.0) for i in range(200)]
    noise += [bar_record("SPX", 10_000 + i, 5.0, "1h") for i in range(5)]
    _, pub = run(bar_records(closes[:200], vix[:200]) + noise)
    _, ref = run(bar_records(closes[:200], vix[:200]))
    assert pub.out == ref.out and not pub.dead


def test_bad_and_duplicate_bars_go_to_the_dead_letter_topic(market) -> None:
    closes, vix = market
    recs = bar_records(closes[:30], vix[:30])
    bad = {**recs[-2], "close": -1.0}
    _, pub = run([*recs, recs[-2], bad, {**bar_record("VIX", 29, 20.0), "close": float("nan")}])
    assert pub.dead == ["duplicate or out-of-order bar", "invalid close price", "invalid close price"]


def test_records_match_the_schema_on_the_in_process_bus(market) -> None:
    closes, vix = market
    bus = InProcessBus()
    wire_inprocess(bus, SPEC, RegimeSettings(**FAST))
    got: list[Message] = []
    bus.subscribe("probe", ["regime.state"], got.append)
    bus.add_source("ingest", (("md.bars", r["symbol"], r) for r in bar_records(closes[:200], vix[:200])))
    bus.run()
    assert not bus.dead_letters
    assert len(got) == 200 - (FAST["vol_window"] + FAST["min_fit_bars"] - 1)
    assert all(m.key == "market" and m.schema == "quorum.v1.RegimeChanged" for m in got)


@pytest.mark.parametrize(("env", "field"), [
    ({"QUORUM_N_STATES": "5"}, "N_STATES"),
    ({"QUORUM_MIN_FIT_BARS": "900"}, "min_fit_bars"),
    ({"QUORUM_VIX_SYMBOL": "SPX"}, "vix_symbol"),
    ({"QUORUM_HIGH_VOL_MIN_RATIO": "0.5"}, "HIGH_VOL_MIN_RATIO"),
    ({"QUORUM_WINDOW_MODE": "weekly"}, "WINDOW_MODE"),
    ({"QUORUM_REFIT_LAG_ROWS": "21"}, "refit_lag_rows"),
])
def test_invalid_configuration_names_the_field(monkeypatch: pytest.MonkeyPatch, env: dict, field: str) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(ConfigError, match=field):
        load_settings(RegimeSettings)


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUORUM_MARKET_SYMBOL", "SPY")
    monkeypatch.setenv("QUORUM_REFIT_EVERY", "5")
    s = load_settings(RegimeSettings)
    assert (s.market_symbol, s.refit_every, s.service_name) == ("SPY", 5, "regime")




class FullWindowReference(Collect):
    """Also computes every record's probabilities as the engine did before its forward filter: the last row
    of hmmlearn's ``predict_proba`` on the engine's last ``window_bars`` rows, under the model in force."""

    def __init__(self) -> None:
        super().__init__()
        self.engine: RegimeEngine | None = None
        self.reference: list[np.ndarray] = []

    def publish(self, topic: str, record: dict[str, Any], *, key: str | None = None) -> None:
        super().publish(topic, record, key=key)
        engine = self.engine
        assert engine is not None and engine.model is not None
        model = engine.model
        window = engine._x[-engine.settings.window_bars:, :model.n_features]
        posterior = model.hmm.predict_proba((window - model.center) / model.scale)[-1][model.order]
        self.reference.append(posterior / posterior.sum())


def test_filtered_probabilities_on_real_data_equal_the_full_window_computation(real_bars) -> None:
    pub = FullWindowReference()
    engine = RegimeEngine(RegimeSettings(), pub)  # the default settings: 756-row rolling window, warm refits
    pub.engine = engine
    for rec in real_bars("2013-01-01", "2017-12-31"):  # the VIX starts in 2014: models without, then with it
        engine.on_message(Message("md.bars", rec["symbol"], rec, "quorum.v1.BarClosed"))
    records = [r for _, _, r in pub.out]
    assert len(records) > 900 and not pub.dead
    assert {"vix" in r["features"] for r in records} == {True, False}
    probs = np.array([r["probabilities"] for r in records])
    reference = np.array(pub.reference)
    assert np.abs(probs - reference).max() < 1e-6
    assert [r["state"] for r in records] == [int(np.argmax(p)) for p in reference]


def test_warm_start_is_a_setting(market, result) -> None:
    closes, vix = market
    cold, cold_pub = result
    warm, warm_pub = run(bar_records(closes, vix), warm_start=True)
    assert warm.model is not None and warm.model.warm_started
    assert cold.model is not None and not cold.model.warm_started
    assert len(cold_pub.out) == len(warm_pub.out) and cold.fits == warm.fits


def by_row(pub: Collect) -> dict[int, dict[str, Any]]:
    return {day(r): r for t, _k, r in pub.out if t == "regime.state"}


@pytest.mark.parametrize("worker", ["inline", "process"])
def test_a_lagged_refit_filters_as_the_refit_of_its_row_once_it_lands(market, result, worker: str) -> None:
    """With ``refit_lag_rows`` = 3, a fit of the window ending at row r is put in force at row r + 3, its
    filter stepped over the rows between: from there on every record is the one of the unlagged engine
    (same fit, same steps); before it, the model in force keeps filtering. Inline or in a worker process,
    the records are the same."""
    closes, vix = market
    engine, pub = run(bar_records(closes, vix), refit_lag_rows=3, fit_worker=worker)
    engine.close()
    now, lagged = by_row(result[1]), by_row(pub)
    fit_rows = sorted({day(r) for r in now.values() if r["fitted_ts"] == r["ts_event"]})
    assert len(fit_rows) >= 4 and engine.fits == result[0].fits
    assert min(lagged) == fit_rows[0] + 3  # nothing before the first fit lands
    lands = {r + 3 for r in fit_rows}
    fields = ("state", "label", "probabilities", "state_labels", "fitted_ts", "window_bars")
    same = 0
    for row, rec in lagged.items():
        in_force = max(r for r in fit_rows if r + 3 <= row)  # the last fit landed by this row
        assert rec["fitted_ts"] == now[in_force]["fitted_ts"]
        if now[row]["fitted_ts"] == rec["fitted_ts"]:  # the unlagged engine runs the same fit: same records
            assert {f: rec[f] for f in fields} == {f: now[row][f] for f in fields}, row
            same += 1
        else:  # a newer fit, not landed yet: at most the lag's rows after it
            assert row - max(r for r in fit_rows if r <= row) < 3, row
    assert same == len(lagged) - 3 * (len(fit_rows) - 1)
    assert lands <= set(lagged) | {max(now) + 1, max(now) + 2, max(now) + 3}
    if worker == "process":
        inline = by_row(run(bar_records(closes, vix), refit_lag_rows=3)[1])
        assert lagged == inline
