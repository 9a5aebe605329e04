"""Settings: clear errors naming the field, and the venue they build."""

from __future__ import annotations

import pytest
from quorum_common.runtime.config import ConfigError, load_settings
from quorum_execution.app import make_venue
from quorum_execution.ccxt_venue import CcxtVenue
from quorum_execution.config import ExecutionSettings, per_class
from quorum_execution.paper import PaperExchange


@pytest.mark.parametrize(("var", "value", "field"), [
    ("QUORUM_FEE_BPS", '{"equity": 1}', "FEE_BPS"),
    ("QUORUM_HALF_SPREAD_BPS", '{"default": -1}', "HALF_SPREAD_BPS"),
    ("QUORUM_ADV_NOTIONAL", '{"default": 0}', "ADV_NOTIONAL"),
    ("QUORUM_MAX_PARTICIPATION", "0", "MAX_PARTICIPATION"),
    ("QUORUM_MAX_PARTICIPATION", "1.5", "MAX_PARTICIPATION"),
    ("QUORUM_VENUE", "nyse", "VENUE"),
    ("QUORUM_MIN_FEE", "-1", "MIN_FEE"),
])
def test_invalid_settings_name_the_variable(monkeypatch, var: str, value: str, field: str) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError, match=f"QUORUM_{field}"):
        load_settings(ExecutionSettings)


def test_per_class_maps_fall_back_to_default(monkeypatch) -> None:
    monkeypatch.setenv("QUORUM_FEE_BPS", '{"crypto": 10, "default": 3}')
    s = load_settings(ExecutionSettings)
    assert per_class(s.fee_bps, "crypto") == 10 and per_class(s.fee_bps, "equity") == 3


def test_paper_venue_by_default() -> None:
    venue = make_venue(ExecutionSettings(max_participation=0.2))
    assert isinstance(venue, PaperExchange) and venue.name == "SIM" and venue.max_participation == 0.2


def test_ccxt_venue_from_settings() -> None:
    venue = make_venue(ExecutionSettings(venue="ccxt", ccxt_exchange="binance", ccxt_markets={"BTC-USD": "BTC/USDT"}))
    assert isinstance(venue, CcxtVenue) and venue.name == "BINANCE"
    assert venue.market("BTC-USD") == "BTC/USDT" and venue.market("ETH-USD") == "ETH/USD"


def test_unknown_ccxt_exchange_is_named() -> None:
    with pytest.raises(ValueError, match="QUORUM_CCXT_EXCHANGE"):
        make_venue(ExecutionSettings(venue="ccxt", ccxt_exchange="nosuchexchange"))
