"""A mandate that names a symbol no replayed data set holds is refused before a run or ``up`` starts, naming it;
narrowing the replay with ``QUORUM_SYMBOLS`` stays the user's choice."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from quorum_common.runtime.config import ConfigError
from quorum_desk.app import main
from quorum_desk.coverage import check_replay_covers_mandate

MANDATE = """capital: 250000
horizon: 1y
risk_tolerance: moderate
max_drawdown: 0.1
universe:
  - {{symbol: KO, sector: Consumer Staples, asset_class: equity}}
  - {{symbol: {first}, sector: Consumer Discretionary, asset_class: equity}}
  - {{symbol: {second}, sector: FX, asset_class: fx}}
"""


def mandate(tmp_path: Path, first: str = "PEP", second: str = "BTC-USD") -> Path:
    """A mandate file trading KO, ``first`` and ``second``."""
    path = tmp_path / "mandate.yaml"
    path.write_text(MANDATE.format(first=first, second=second))
    return path


def test_the_default_mandate_and_a_covered_one_pass_and_get_the_replayed_symbols(tmp_path: Path) -> None:
    replayed = check_replay_covers_mandate({})  # refused: ConfigError
    assert replayed is not None and {"AAPL", "KO", "SPX", "VIX", "BTC-USD"} <= replayed and "EUR-USD" not in replayed
    assert check_replay_covers_mandate({"manager": {"mandate_path": mandate(tmp_path)}}) == replayed


def test_symbols_no_replayed_data_set_holds_are_refused_by_name(tmp_path: Path) -> None:
    path = mandate(tmp_path, first="TSLA", second="EUR-USD")
    with pytest.raises(ConfigError) as refused:
        check_replay_covers_mandate({"manager": {"mandate_path": path}})
    message = str(refused.value)
    assert message.startswith(f"mandate {path}: universe: TSLA, EUR-USD are in none of the replayed data sets")
    assert "EUR-USD is in the bundled data set EURUSD" in message and "TSLA is in" not in message
    assert ", KO," in message  # the symbols the replay does hold
    # the data set that holds it, replayed: covered
    covered = check_replay_covers_mandate({"manager": {"mandate_path": mandate(tmp_path, second="EUR-USD")},
                                           "ingest": {"datasets": ("SP500_STOCKS", "SPX", "EURUSD")}})
    assert covered is not None and "EUR-USD" in covered and "BTC-USD" not in covered


def test_a_replay_narrowed_to_some_symbols_and_a_live_desk_are_not_refused(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("QUORUM_SYMBOLS", json.dumps(["KO", "SPX"]))  # the default mandate trades 21 symbols
    assert "AAPL" in (check_replay_covers_mandate({}) or ())  # the data sets' symbols, not the narrowing
    assert check_replay_covers_mandate({"ingest": {"mode": "live"},
                                        "manager": {"mandate_path": mandate(tmp_path, first="TSLA")}}) is None


def test_run_and_up_refuse_an_uncovered_mandate_before_starting(tmp_path: Path, monkeypatch, capsys) -> None:
    from quorum_desk import local

    started: list[dict] = []
    monkeypatch.setattr(local, "up", lambda **kw: started.append(kw))
    path = mandate(tmp_path, first="TSLA")
    assert main(["run", "--mandate", str(path), "--reports", str(tmp_path / "reports")]) == 2
    assert "universe: TSLA is in none of the replayed data sets" in capsys.readouterr().err
    assert not (tmp_path / "reports").exists()
    assert main(["up", "--mandate", str(path)]) == 2
    assert "universe: TSLA is in none" in capsys.readouterr().err and not started
