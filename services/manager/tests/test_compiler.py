"""Compiling the mandate into the MandateCompiled record."""

from __future__ import annotations

import hashlib
import json

import pytest
import yaml
from quorum_common.bus.topic_codec import TopicCodec
from quorum_manager.compiler import (
    CDAR_ALPHA,
    SIDECAR_SLACK,
    TOLERANCE_TABLE,
    calendar_days,
    compile_mandate,
)
from quorum_manager.mandate import accept_mandate, read_mandate_text

BASE = {"capital": 2_000_000, "horizon": "1y", "max_drawdown": 0.2, "risk_tolerance": "moderate"}


def compiled(**changes: object) -> dict:
    accepted = accept_mandate(yaml.safe_dump({**BASE, **changes}))
    return compile_mandate(accepted.mandate, accepted.source_document, ts_event=7, version=3, compiled_by="bob",
                           explicit_fields=set(accepted.explicit_fields))


def test_record_fits_the_schema_exactly() -> None:
    codec = TopicCodec()
    accepted = accept_mandate(read_mandate_text())
    record = compile_mandate(accepted.mandate, accepted.source_document, ts_event=11)
    schema_fields = {f["name"] for f in codec.catalog.schema_for("mandate.compiled").raw["fields"]}
    assert set(record) == schema_fields  # every field filled, none invented
    _, back = codec.decode("mandate.compiled", codec.encode("mandate.compiled", record))
    assert back == record


@pytest.mark.parametrize("tolerance", ["conservative", "moderate", "aggressive"])
def test_tolerance_table_drives_the_numbers(tolerance: str) -> None:
    row = TOLERANCE_TABLE[tolerance]
    r = compiled(risk_tolerance=tolerance)
    assert r["risk_tolerance"] == tolerance.upper()
    assert r["risk_measure"] == row.risk_measure.upper()
    assert r["upper_risk"] == pytest.approx(0.2 * row.upper_risk_factor)
    assert r["cdar_alpha"] == (CDAR_ALPHA if row.risk_measure == "CDaR" else None)
    assert r["rebalance"]["drift_band"] == row.drift_band
    assert r["rebalance"]["cooldown_days"] == row.cooldown_days
    assert r["rebalance"]["lookback_days"] == row.lookback_days
    assert r["rebalance"]["min_trade_value"] == pytest.approx(max(100.0, 2_000_000 * row.min_trade_fraction))
    limits = r["risk_limits"]
    assert limits["max_order_notional"] == pytest.approx(2_000_000 * row.max_order_capital_fraction)
    assert limits["drawdown_lock"] == pytest.approx(0.2 * row.drawdown_lock_factor)
    assert limits["max_position_weight"] == row.max_position_weight
    assert r["target_volatility"] == row.target_volatility
    assert r["derisk_drawdown"] == pytest.approx(limits["drawdown_lock"] * row.derisk_factor)
    side = r["sidecar_limits"]
    assert side["max_order_notional"] == pytest.approx(limits["max_order_notional"] * SIDECAR_SLACK)
    assert side["price_collar_pct"] > limits["price_collar_pct"]
    assert side["max_open_orders"] > limits["max_open_orders"]


def test_tolerances_order_from_tight_to_loose() -> None:
    c, m, a = (compiled(risk_tolerance=t) for t in ("conservative", "moderate", "aggressive"))
    for path in (("upper_risk",), ("target_volatility",), ("derisk_drawdown",), ("risk_limits", "drawdown_lock"),
                 ("risk_limits", "max_position_weight"),
                 ("risk_limits", "price_collar_pct"), ("rebalance", "drift_band"),
                 ("sidecar_limits", "max_order_notional")):
        values = []
        for r in (c, m, a):
            for p in path:
                r = r[p]
            values.append(r)
        assert values[0] < values[1] < values[2], path
    assert c["rebalance"]["cooldown_days"] > m["rebalance"]["cooldown_days"] > a["rebalance"]["cooldown_days"]


def test_drawdown_lock_is_inside_the_mandates_max_drawdown() -> None:
    for t in TOLERANCE_TABLE:
        r = compiled(risk_tolerance=t)
        assert 0 < r["risk_limits"]["drawdown_lock"] < r["max_drawdown"]
        assert r["upper_risk"] <= r["max_drawdown"]
        assert 0 < r["derisk_drawdown"] < r["risk_limits"]["drawdown_lock"]  # the targets shrink before the lock


def test_a_target_volatility_in_the_mandate_wins_over_the_tolerances() -> None:
    assert compiled(target_volatility=0.07, risk_tolerance="aggressive")["target_volatility"] == 0.07


@pytest.mark.parametrize(("horizon", "period"), [("30d", 7), ("90d", 7), ("6m", 14), ("1y", 14), ("2y", 30)])
def test_calendar_period_follows_the_horizon(horizon: str, period: int) -> None:
    r = compiled(horizon=horizon)
    assert r["rebalance"]["calendar_days"] == period == calendar_days(r["horizon_days"])
    assert r["rebalance"]["cooldown_days"] <= period


def test_explicit_risk_measure_and_objective_win() -> None:
    r = compiled(risk_measure="MDD", objective="MinRisk", risk_tolerance="aggressive")
    assert (r["risk_measure"], r["cdar_alpha"], r["objective"]) == ("MDD", None, "MIN_RISK")
    assert not any(w.startswith("risk_measure") for w in r["warnings"])
    assert any(w.startswith("risk_measure") for w in compiled()["warnings"])


def test_caps_universe_and_ensemble_are_carried_over() -> None:
    r = compiled(sector_caps={"Energy": 0.1}, asset_class_caps={"crypto": 0.05}, min_weights={"equity": 0.5})
    assert r["sector_caps"] == {"Energy": 0.1}
    assert r["asset_class_caps"] == {"crypto": 0.05}
    assert r["min_weights"] == {"equity": 0.5}
    assert {u["symbol"] for u in r["universe"]} >= {"AAPL", "BTC-USD"}
    assert r["ensemble_weights"]["TRENDING"]["ML_FORECAST"] == 0.5
    assert r["muted_strategies"]["HIGH_VOL"] == ["MEAN_REVERSION"]
    assert r["thresholds"]["strong_buy"] == 0.6


def test_source_document_and_digest() -> None:
    r = compiled()
    assert json.loads(r["source_document"]) == BASE
    assert r["source_sha256"] == hashlib.sha256(r["source_document"].encode()).hexdigest()
    assert (r["version"], r["compiled_by"], r["ts_event"]) == (3, "bob", 7)


def test_compilation_is_deterministic() -> None:
    assert compiled() == compiled()


def test_an_unfillable_position_cap_is_warned_about() -> None:
    universe = [{"symbol": s, "sector": "X", "asset_class": "equity"} for s in "ABC"]
    r = compiled(universe=universe, risk_tolerance="conservative")
    assert any("cannot be fully invested" in w for w in r["warnings"])
