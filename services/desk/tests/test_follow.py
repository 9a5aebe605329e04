"""``quorum-desk up --follow``: the replay's progress from the ingest log's last start, then the desk's status; an
ingest that ended without finishing is reported with its log."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from quorum_common.event_dates import day_ns
from quorum_desk import follow as following
from quorum_desk import local


def _line(message: str, **fields: object) -> str:
    return json.dumps({"level": "INFO", "service": "ingest", "message": message, **fields})


@pytest.fixture
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(local, "RUN_DIR", tmp_path)
    (tmp_path / "logs").mkdir()
    return tmp_path


def _ended_pid(run_dir: Path) -> int:
    """A process id of a process that has ended, written as the ingest's."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    (run_dir / "ingest.pid").write_text(str(proc.pid))
    return proc.pid


STATUS = {"state": "REDUCING", "state_reason": "DRAWDOWN_LOCK", "nav": 1_234_567.891,
          "portfolios": [{"ts": day_ns("2006-12-29"), "drawdown": 0.0512,
                          "positions": [{"symbol": "KO", "quantity": 10.0}, {"symbol": "PEP", "quantity": 0.0}]}]}


def test_follow_prints_the_last_replays_progress_then_the_desks_status(run_dir: Path) -> None:
    _ended_pid(run_dir)  # it wrote its log and ended, as a finished replay does
    (run_dir / "logs" / "ingest.log").write_text("\n".join([
        _line("service started"), _line("published", records=10_000, through="2005-06-01"),
        _line("source finished", records=12_000),  # an earlier replay's
        _line("service started"), "Traceback (most recent call last): not JSON",
        _line("published", records=10_000, through="2006-03-02"),
        _line("published", records=20_000, through="2006-09-05"),
        _line("source finished", records=25_311), _line("service stopped")]) + "\n")
    said: list[str] = []
    assert following.follow(said.append, status=lambda: STATUS, poll_s=0.01) == 0
    assert said == ["  2006-03-02      10,000 records replayed", "  2006-09-05      20,000 records replayed",
                    "replay finished: 25,311 records",
                    "state REDUCING, NAV 1,234,567.89, drawdown 5.12%, 1 positions (snapshot of 2006-12-29)"]


def test_follow_reports_an_ingest_that_ended_before_finishing(run_dir: Path) -> None:
    _ended_pid(run_dir)
    (run_dir / "logs" / "ingest.log").write_text("\n".join([
        _line("service started"), _line("published", records=10_000, through="2006-03-02"),
        "Traceback (most recent call last):", "KafkaException: broker down"]) + "\n")
    said: list[str] = []
    assert following.follow(said.append, status=lambda: pytest.fail("no status after a failed replay"),
                            poll_s=0.01) == 1
    assert said[0] == "  2006-03-02      10,000 records replayed"
    assert "ended before the replay finished" in said[1] and "KafkaException: broker down" in said[1]


def test_follow_without_a_replay_says_so(run_dir: Path) -> None:
    said: list[str] = []
    assert following.follow(said.append, status=dict) == 1
    assert "no replay to follow" in said[0]


def test_a_status_before_any_snapshot_names_the_state() -> None:
    line = following.status_line({"state": "ACTIVE", "state_reason": "start", "nav": None, "portfolios": []})
    assert line == "state ACTIVE (start); no portfolio snapshot yet"


def test_follow_gives_up_after_its_timeout(run_dir: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])  # a replay that does not finish
    try:
        (run_dir / "ingest.pid").write_text(str(proc.pid))
        (run_dir / "logs" / "ingest.log").write_text(_line("service started") + "\n")
        said: list[str] = []
        assert following.follow(said.append, status=dict, poll_s=0.01, timeout_s=0.2) == 1
        assert said == ["the replay did not finish within 0.2 s"]
    finally:
        proc.kill()
        proc.wait()


def test_follow_reads_only_what_the_replay_it_follows_wrote(run_dir: Path) -> None:
    """Right after `up` started ingest, the log still ends with the earlier replay's records: they are not this
    replay's end."""
    log = run_dir / "logs" / "ingest.log"
    log.write_text("\n".join([_line("service started"), _line("source finished", records=12_000)]) + "\n")
    log_from = following.log_size()
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])  # the new ingest, not logging yet
    try:
        (run_dir / "ingest.pid").write_text(str(proc.pid))
        said: list[str] = []
        assert following.follow(said.append, status=dict, poll_s=0.01, timeout_s=0.3, log_from=log_from) == 1
        assert said == ["the replay did not finish within 0.3 s"]
        with open(log, "a") as f:  # the new replay logs its start and its end
            f.write(_line("service started") + "\n" + _line("source finished", records=99) + "\n")
        said.clear()
        assert following.follow(said.append, status=lambda: STATUS, poll_s=0.01, log_from=log_from) == 0
        assert said[0] == "replay finished: 99 records"
    finally:
        proc.kill()
        proc.wait()
