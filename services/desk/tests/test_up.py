"""``quorum-desk up``: the window flags it shares with ``run`` reach each service as its process reads them, checked
before anything starts; a replay on an earlier desk's topics is refused with what to do. (Starting the desk for real:
``test_local_restart.py``.)"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from quorum_common.runtime.config import load_settings
from quorum_desk.app import main


@pytest.fixture
def no_local_up(monkeypatch) -> list[dict]:
    """``local.up`` replaced by a recorder of its arguments: these tests check what ``up`` would start with."""
    from quorum_desk import local

    calls: list[dict] = []
    monkeypatch.setattr(local, "up", lambda **kw: calls.append(kw))
    return calls


def test_up_gives_the_services_the_window_and_warmup_of_its_flags(no_local_up, tmp_path, monkeypatch) -> None:
    from quorum_admin.config import AdminSettings
    from quorum_critic.config import CriticSettings
    from quorum_ingest.config import IngestSettings
    from quorum_manager.config import ManagerSettings
    from quorum_portfolio.config import PortfolioSettings

    mandate = tmp_path / "mandate.yaml"
    mandate.write_text((Path(__file__).resolve().parents[2] / "manager" / "quorum_manager" / "default_mandate.yaml")
                       .read_text())
    monkeypatch.chdir(tmp_path)
    assert main(["up", "--mandate", "mandate.yaml", "--start", "2010-01-04", "--end", "2010-06-30",
                 "--warmup", "365", "--no-replay"]) == 0
    (call,) = no_local_up
    assert call["replay"] is False
    for name, value in call["env"].items():  # as each service process reads its environment
        monkeypatch.setenv(name, value)
    assert load_settings(IngestSettings).start == date(2009, 1, 4)
    assert load_settings(IngestSettings).end == date(2010, 6, 30)
    assert load_settings(PortfolioSettings).trade_from == load_settings(CriticSettings).trade_from == date(2010, 1, 4)
    assert load_settings(ManagerSettings).mandate_path == mandate  # absolute: services may start elsewhere
    tradable = load_settings(AdminSettings).tradable_symbols  # PUT /mandate refuses a symbol the replay lacks
    assert tradable is not None and {"AAPL", "KO", "SPX", "BTC-USD"} <= set(tradable) and "EUR-USD" not in tradable


def test_up_refuses_a_bad_mandate_before_starting_anything(no_local_up, tmp_path, capsys) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("capital: 1000000\nmax_drawdown: 1.5\nhorizon: 1y\nrisk_tolerance: moderate\n")
    assert main(["up", "--mandate", str(bad)]) == 2
    assert not no_local_up
    assert "max_drawdown" in capsys.readouterr().err


def test_up_on_an_earlier_desks_topics_is_refused_with_what_to_do(monkeypatch, capsys) -> None:
    from quorum_desk import local

    def not_fresh(**_kw: object) -> None:
        raise local.UpRefused("the local broker's topics already hold an earlier desk's records (md.bars 12): ...")

    monkeypatch.setattr(local, "up", not_fresh)
    assert main(["up", "--follow"]) == 2
    assert "error: the local broker's topics already hold an earlier desk's records (md.bars 12)" in \
        capsys.readouterr().err
