"""Settings, the service spec and the compile command line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from quorum_common.bus.inprocess import InProcessBus
from quorum_common.runtime.config import ConfigError, load_settings
from quorum_common.runtime.service import wire_inprocess
from quorum_manager.app import SPEC
from quorum_manager.compile import main
from quorum_manager.config import ManagerSettings
from quorum_manager.engine import ManagerEngine

BAD = "capital: 1000\nhorizon: 1y\nrisk_tolerance: moderate\nmax_drawdown: 1.5\n"


def test_cli_prints_the_compiled_default_mandate(capsys) -> None:
    assert main([]) == 0
    record = json.loads(capsys.readouterr().out)
    assert (record["mandate_id"], record["capital"], record["risk_measure"]) == ("default", 1_000_000.0, "CDAR")


def test_cli_refuses_a_bad_file_naming_the_field(tmp_path, capsys) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD)
    assert main([str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip() == "error: max_drawdown: must be between 0 and 1"


def test_cli_names_a_missing_file(tmp_path, capsys) -> None:
    assert main([str(tmp_path / "nope.yaml")]) == 2
    assert capsys.readouterr().err.startswith("error: mandate_path: cannot read")


def test_cli_as_a_module(tmp_path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"capital": 1, "horizon": "1y", "risk_tolerance": "moderate", "max_drawdown": 0.1,
                                "sector_caps": {"Astrology": 0.2}}))
    proc = subprocess.run([sys.executable, "-m", "quorum_manager.compile", str(path)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: sector_caps: Astrology not in the universe")


def test_invalid_mandate_file_stops_the_service_naming_variable_and_field(tmp_path, monkeypatch) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD)
    monkeypatch.setenv("QUORUM_MANDATE_PATH", str(path))
    with pytest.raises(ConfigError, match=r"QUORUM_MANDATE_PATH: .*max_drawdown: must be between 0 and 1"):
        load_settings(ManagerSettings)


def test_invalid_setting_names_the_variable(monkeypatch) -> None:
    monkeypatch.setenv("QUORUM_MANAGER_SENTIMENT_WINDOW_S", "-1")
    with pytest.raises(ConfigError, match="QUORUM_MANAGER_SENTIMENT_WINDOW_S"):
        load_settings(ManagerSettings)


def test_spec_wires_the_engine_to_its_topics() -> None:
    bus = InProcessBus()
    engine = wire_inprocess(bus, SPEC, ManagerSettings())
    assert isinstance(engine, ManagerEngine)
    assert set(engine.inputs) == {"signals.raw", "model.forecasts", "alt.sentiment", "regime.state", "sys.clock",
                                  "control.commands"}
    assert SPEC.name == "manager" and ManagerSettings().service_name == "manager"
