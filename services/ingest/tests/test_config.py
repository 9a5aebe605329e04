"""Invalid ingest settings stop the service with a message naming the variable."""

from __future__ import annotations

import pytest
from quorum_common.runtime.config import ConfigError, load_settings
from quorum_ingest.app import make_source
from quorum_ingest.config import IngestSettings
from quorum_ingest.engine import BarReplaySource


@pytest.mark.parametrize(("env", "value", "named"), [
    ("QUORUM_DATASETS", '["NOPE"]', "QUORUM_DATASETS"),
    ("QUORUM_MAX_BARS", "0", "QUORUM_MAX_BARS"),
    ("QUORUM_REPLAY_SPEED", "-1", "QUORUM_REPLAY_SPEED"),
    ("QUORUM_START", "2020-13-01", "QUORUM_START"),
    ("QUORUM_LIVE_TIMEFRAME", "7m", "QUORUM_LIVE_TIMEFRAME"),
    ("QUORUM_BOOK_DEPTH", "0", "QUORUM_BOOK_DEPTH"),
    ("QUORUM_POLL_INTERVAL_S", "0", "QUORUM_POLL_INTERVAL_S"),
    ("QUORUM_MODE", "paper", "QUORUM_MODE"),
])
def test_bad_values_name_the_variable(monkeypatch: pytest.MonkeyPatch, env: str, value: str, named: str) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError, match=named):
        load_settings(IngestSettings)


def test_window_must_not_be_reversed() -> None:
    with pytest.raises(ConfigError, match="start 2019-01-01 is after end 2018-12-31"):
        load_settings(IngestSettings, start="2019-01-01", end="2018-12-31")


def test_symbols_must_belong_to_the_data_sets() -> None:
    with pytest.raises(ConfigError, match=r"symbols \['GOOG'\]"):
        load_settings(IngestSettings, datasets=("SP500_STOCKS",), symbols=("KO", "GOOG"))


def test_environment_selects_data_sets_and_window(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUORUM_DATASETS", '["SPX","VIX"]')
    monkeypatch.setenv("QUORUM_START", "2015-01-01")
    settings = load_settings(IngestSettings)
    assert settings.datasets == ("SPX", "VIX") and str(settings.start) == "2015-01-01"
    assert isinstance(make_source(settings), BarReplaySource)


def test_standby_mode_publishes_nothing_and_needs_lockstep_standby() -> None:
    with pytest.raises(ConfigError, match="mode: standby publishes no data, so it needs lockstep and lockstep_standby"):
        load_settings(IngestSettings, mode="standby", lockstep=True)
    settings = load_settings(IngestSettings, mode="standby", lockstep=True, lockstep_standby=True)
    assert list(make_source(settings).records()) == []
