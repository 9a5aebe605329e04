"""The mandate document: parsing, defaults, and refusals that name the field."""

from __future__ import annotations

import json

import pytest
import yaml
from quorum_common.universe import INSTRUMENTS
from quorum_manager.mandate import MandateError, accept_mandate, load_mandate, parse_mandate, read_mandate_text

MINIMAL = {"capital": 50_000, "horizon": "6m", "risk_tolerance": "conservative", "max_drawdown": 0.1}


def doc(**changes: object) -> str:
    """A YAML document of MINIMAL with ``changes`` (a value of None removes the field)."""
    raw = {**MINIMAL, **changes}
    return yaml.safe_dump({k: v for k, v in raw.items() if v is not None})


def test_default_mandate_file_is_the_desks_default() -> None:
    m = parse_mandate(read_mandate_text())
    assert (m.capital, m.base_currency, m.risk_tolerance, m.horizon_days) == (1_000_000, "USD", "moderate", 365)
    assert m.max_drawdown == 0.15
    assert m.sector_caps == {"Information Technology": 0.30}
    assert m.asset_class_caps == {"crypto": 0.20}
    symbols = [u.symbol for u in m.universe]
    assert len(symbols) == 21 and "BTC-USD" in symbols
    assert sum(1 for u in m.universe if u.asset_class == "equity") == 20
    for u in m.universe:  # sectors and classes agree with the desk's instrument map
        assert (u.sector, u.asset_class) == (INSTRUMENTS[u.symbol].sector, INSTRUMENTS[u.symbol].asset_class)


def test_defaults_universe_is_every_tradable_instrument() -> None:
    m = parse_mandate(doc())
    assert {u.symbol for u in m.universe} == {s for s, i in INSTRUMENTS.items() if i.tradable}
    assert m.objective == "Sharpe" and m.risk_measure is None and m.mandate_id == "default"


def test_json_and_yaml_give_the_same_mandate() -> None:
    assert parse_mandate(json.dumps(MINIMAL)) == parse_mandate(doc())


@pytest.mark.parametrize(("horizon", "days"), [("1y", 365), ("6m", 180), ("90d", 90), ("2w", 14), ("3Y", 1095)])
def test_horizon_in_days(horizon: str, days: int) -> None:
    assert parse_mandate(doc(horizon=horizon)).horizon_days == days


def test_risk_tolerance_is_case_insensitive() -> None:
    assert parse_mandate(doc(risk_tolerance="Aggressive")).risk_tolerance == "aggressive"


@pytest.mark.parametrize(("changes", "field", "words"), [
    ({"capital": -5}, "capital", "greater than 0"),
    ({"capital": None}, "capital", "required"),
    ({"max_drawdown": 1.5}, "max_drawdown", "must be between 0 and 1"),
    ({"max_drawdown": 0}, "max_drawdown", "must be between 0 and 1"),
    ({"horizon": "soon"}, "horizon", "d, w, m or y"),
    ({"horizon": "0y"}, "horizon", "positive"),
    ({"risk_tolerance": "yolo"}, "risk_tolerance", "conservative"),
    ({"base_currency": "usd"}, "base_currency", "pattern"),
    ({"objective": "MaxFun"}, "objective", "Sharpe"),
    ({"risk_measure": "VaR"}, "risk_measure", "MDD"),
    ({"leverage": 3}, "leverage", "unknown field"),
    ({"target_volatility": 0}, "target_volatility", "greater than 0"),
    ({"target_volatility": 1.5}, "target_volatility", "less than or equal to 1"),
    ({"universe": []}, "universe", "at least 1"),
    ({"universe": [{"symbol": "A", "sector": "X", "asset_class": "equity", "colour": "red"}]},
     "universe.0.colour", "unknown field"),
    ({"universe": [{"symbol": "A", "sector": "X", "asset_class": "equity", "max_weight": 2}]},
     "universe.0.max_weight", "between 0 and 1"),
    ({"universe": [{"symbol": "A", "sector": "X", "asset_class": "e"}] * 2}, "universe", "duplicate symbols A"),
    ({"sector_caps": {"Energy": 1.5}}, "sector_caps", "Energy must be between 0 and 1"),
    ({"sector_caps": {"Astrology": 0.1}}, "sector_caps", "Astrology not in the universe"),
    ({"asset_class_caps": {"bond": 0.1}}, "asset_class_caps", "bond not in the universe"),
    ({"min_weights": {"crypto": 0.3}, "asset_class_caps": {"crypto": 0.2}}, "min_weights.crypto", "above its cap"),
    ({"min_weights": {"equity": 0.7, "crypto": 0.5}}, "min_weights", "sum to more than 1"),
    ({"asset_class_caps": {"equity": 0.5, "crypto": 0.2, "fx": 0.1}}, "asset_class_caps", "fully invested"),
    ({"ensemble": {"thresholds": {"strong_buy": 0.1, "buy": 0.3}}}, "ensemble.thresholds", "buy <= strong_buy"),
    ({"ensemble": {"weights": {"TRENDING": {"MOMENTUM": -1}}}}, "ensemble", "weights.TRENDING.MOMENTUM"),
    ({"ensemble": {"weights": {"SIDEWAYS": {"MOMENTUM": 1}}}}, "ensemble.weights.SIDEWAYS", "TRENDING"),
    ({"ensemble": {"muted": {"HIGH_VOL": ["ASTROLOGY"]}}}, "ensemble.muted.HIGH_VOL.0", "MEAN_REVERSION"),
])
def test_bad_field_is_refused_by_name(changes: dict, field: str, words: str) -> None:
    with pytest.raises(MandateError) as err:
        parse_mandate(doc(**changes))
    assert err.value.field == field
    assert words in err.value.message
    assert str(err.value).startswith(f"{field}: ")


def test_every_bad_field_is_reported() -> None:
    with pytest.raises(MandateError) as err:
        parse_mandate(doc(capital=0, max_drawdown=2))
    assert {f for f, _ in err.value.problems} == {"capital", "max_drawdown"}


@pytest.mark.parametrize("text", ["[1, 2]", "just words", "capital: [unclosed"])
def test_a_document_that_is_not_a_mapping_is_refused(text: str) -> None:
    with pytest.raises(MandateError) as err:
        parse_mandate(text)
    assert err.value.field == "document"


def test_load_mandate_names_the_unreadable_path(tmp_path) -> None:
    with pytest.raises(MandateError) as err:
        load_mandate(tmp_path / "missing.yaml")
    assert err.value.field == "mandate_path"
    (tmp_path / "m.yaml").write_text(doc())
    assert load_mandate(tmp_path / "m.yaml").capital == 50_000


def test_accepted_mandate_keeps_canonical_json_and_written_fields() -> None:
    accepted = accept_mandate(doc())
    assert json.loads(accepted.source_document) == MINIMAL
    assert accepted.explicit_fields == frozenset(MINIMAL)
    assert accept_mandate(json.dumps(MINIMAL)).source_document == accepted.source_document
