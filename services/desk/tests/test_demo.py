"""The embedded demo (the README's main command) runs on bundled data and reports what arrived."""

from __future__ import annotations

from quorum_desk.app import main
from quorum_desk.config import DeskSettings
from quorum_desk.engine import run_embedded


def test_embedded_run_pushes_bars_through_both_services() -> None:
    run, bus = run_embedded(DeskSettings(datasets=("GOOG",), max_bars=100))
    assert run.counts["md.bars"] == 100
    assert run.counts["signals.raw"] == 100 - DeskSettings().ema_slow_span + 1
    assert bus.dead_letters == []


def test_cli_prints_the_summary(capsys) -> None:
    assert main(["--datasets", "BTCUSD"]) == 0
    out = capsys.readouterr().out
    assert "md.bars" in out and "signals.raw" in out and "BTC-USD" in out


def test_cli_refuses_an_unknown_data_set(capsys) -> None:
    assert main(["--datasets", "NOPE"]) == 2
    assert "QUORUM_DATASETS" in capsys.readouterr().err
