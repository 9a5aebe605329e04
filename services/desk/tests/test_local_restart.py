"""`quorum-desk restart SERVICE`: one service of the local desk (`make up`) stopped and started again mid-replay
rebuilds its engine and the replay goes on to its end; what it cannot restart is refused with a clear message."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import OFFSET_END, Consumer, TopicPartition
from confluent_kafka.admin import AdminClient
from quorum_common.bus.kafka_admin import delete_catalog_topics
from quorum_common.schemas import default_catalog
from quorum_desk import local
from quorum_desk.app import main
from quorum_desk.follow import admin_status, follow


@pytest.fixture
def local_desk_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The local desk's run folder and ports, apart from a `make up` that may run on this machine."""
    monkeypatch.setattr(local, "RUN_DIR", tmp_path)
    monkeypatch.setattr(local, "BASE_PORT", 28180)
    monkeypatch.setattr(local, "ADMIN_PORT", 28100)
    return tmp_path


def test_restart_refuses_a_service_it_does_not_run_and_a_desk_that_is_not_up(local_desk_dirs: Path,
                                                                              capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(ValueError, match="cannot restart 'ingest'"):
        local.restart("ingest")
    with pytest.raises(RuntimeError, match="make up"):
        local.restart("portfolio")
    assert main(["restart", "nonsense"]) == 2
    assert "cannot restart 'nonsense'" in capsys.readouterr().err


def _state_becomes(done: Callable[[str], bool], timeout_s: float = 60) -> dict[str, Any]:
    """The local admin API's ``GET /status`` once its state is ``done`` (fails after ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    while not done((status := admin_status())["state"]):
        assert time.monotonic() < deadline, f"the desk's state did not change as expected: {status}"
        time.sleep(0.2)
    return status


def _command_takes_effect(route: str, token: str, reason: str, state: str) -> dict[str, Any]:
    """POST ``route`` to the local admin API and wait until the desk is in ``state`` for that reason."""
    sent = httpx.post(f"http://127.0.0.1:{local.port_of('admin')}{route}", json={"reason": reason},
                      headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert sent.status_code == 202, sent.text
    status = _state_becomes(lambda now: now == state)
    assert reason in status["state_reason"]
    return status


@pytest.mark.kafka
def test_a_service_restarted_mid_replay_rebuilds_and_the_replay_goes_on(local_desk_dirs: Path,
                                                                         kafka_config: dict[str, str]) -> None:
    prefix = f"lr{uuid.uuid4().hex[:8]}."
    watcher = Consumer({**kafka_config, "group.id": f"watch-{uuid.uuid4().hex[:8]}", "enable.auto.commit": False})
    try:
        tokens = local.up(env={"QUORUM_TOPIC_PREFIX": prefix, "QUORUM_START": "2006-07-01",
                               "QUORUM_END": "2006-12-31"})
        watcher.assign([TopicPartition(prefix + "orders.proposed", 0, 0)])
        proposed, deadline = 0, time.monotonic() + 300
        while proposed < 10:
            assert time.monotonic() < deadline, f"the desk proposed {proposed} orders in time"
            m = watcher.poll(0.2)
            proposed += m is not None and m.error() is None
        old = local.pids()["portfolio"]
        new = local.restart("portfolio", kill=True)
        assert new != old and local.pids()["portfolio"] == new
        said: list[str] = []  # `quorum-desk up --follow`: the replay's end, then the desk's status from the admin API
        assert follow(said.append, timeout_s=300) == 0, said
        assert said[-2].startswith("replay finished: ") and re.match(r"state [A-Z_]+, NAV [0-9,.]+, ", said[-1]), said
        logs = local_desk_dirs / "logs"
        assert "source finished" in (logs / "ingest.log").read_text()
        portfolio_log = (logs / "portfolio.log").read_text()
        assert portfolio_log.count('"service started"') == 2
        assert '"state rebuilt from input history"' in portfolio_log.split('"service started"')[-1]
        # Both instances seal checkpoints with the key `up` made once (and `restart` passed on), readable by us alone.
        assert "no checkpoint key" not in portfolio_log
        assert (local_desk_dirs / local.CHECKPOINT_KEY_FILE).stat().st_mode & 0o777 == 0o600

        # The replay has ended, so no bar time will tick again: a halt sent now still takes effect (ingest stands by)
        status = _command_takes_effect("/halt", tokens["operator"], "after the replay", "HALTED")
        assert status["state_changed_by"] == "local-operator"
        assert '"commands released"' in (logs / "ingest.log").read_text()

        # `up` again while this desk runs would start every service a second time beside it; once it is down, a
        # replay on the same topics would start again underneath its state: both refused, nothing started
        env = {"QUORUM_TOPIC_PREFIX": prefix, "QUORUM_START": "2006-07-01", "QUORUM_END": "2006-12-31"}
        running = local.pids()
        with pytest.raises(local.UpRefused, match=r"a desk runs already: .*portfolio \(pid [0-9]+\)"):
            local.up(env=env)
        assert local.pids() == running
        local.down(broker=False)  # removes the pid files

        # Resumed without a replay (`up --no-replay`), the desk is as it was left, HALTED; ingest stands by, so a risk
        # officer's resume takes effect although no bar time will tick
        tokens = local.up(env=env, replay=False)
        assert _state_becomes(lambda state: state != "UNKNOWN")["state"] == "HALTED"  # the view reads its history
        _command_takes_effect("/resume", tokens["risk_officer"], "resumed desk", "ACTIVE")
        local.down(broker=False)
        earlier = rf"already hold an earlier desk's records \({prefix}md\.bars [0-9,]+, "
        with pytest.raises(local.UpRefused, match=earlier):
            local.up(env=env)
        assert local.pids() == {}  # no process started (each writes its pid file)
        # retention empties md.bars; the compacted topics keep the earlier desk's state: still refused, naming them
        admin = AdminClient(kafka_config)
        bars = [TopicPartition(prefix + "md.bars", p, OFFSET_END)
                for p in admin.list_topics(prefix + "md.bars", timeout=10).topics[prefix + "md.bars"].partitions]
        for future in admin.delete_records(bars).values():
            future.result()
        with pytest.raises(local.UpRefused, match=rf"records \({prefix}[a-z.]+ [0-9,]+") as refused:
            local.up(env=env)
        assert "md.bars" not in str(refused.value) and f"{prefix}control.state " in str(refused.value)
        assert local.pids() == {}
    finally:
        watcher.close()
        local.down(broker=False)
        delete_catalog_topics(kafka_config, default_catalog(), prefix)
