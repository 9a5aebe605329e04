"""``quorum-desk up --follow``: the progress of the local desk's replay as it runs, then the desk's status.

The ingest service logs a ``published`` record every 10,000 records it replays or every 2 seconds, whichever comes
first (with the event date it has reached), and ``source finished`` at the end, in ``.run/logs/ingest.log``. Every
start appends to it, so following reads only what was written after the replay started, from its ``service started``
on. Once the replay finished it asks the admin API's ``GET /status`` (viewer token from ``.run/admin-tokens.json``)
for the trading state, NAV and positions.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from quorum_common.event_dates import utc_date

from quorum_desk import local
from quorum_desk.composition import SOURCE

STARTED, PROGRESS, FINISHED = "service started", "published", "source finished"


def latest_run(log_text: str) -> list[dict[str, Any]]:
    """The JSON log records of a service log's last start (lines that are not JSON records are left out)."""
    records: list[dict[str, Any]] = []
    for line in log_text.splitlines():
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
        except ValueError:  # a line being written
            continue
        if record.get("message") == STARTED:
            records = []
        records.append(record)
    return records


def _read_from(path: Path, offset: int) -> str:
    """The text of ``path`` from byte ``offset`` on (empty while it does not exist)."""
    if not path.exists():
        return ""
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read().decode("utf-8", errors="replace")


def admin_status(timeout_s: float = 10.0) -> dict[str, Any]:
    """The local admin API's ``GET /status``, with the viewer token ``up`` wrote."""
    token = json.loads((local.RUN_DIR / "admin-tokens.json").read_text())["viewer"]
    response = httpx.get(f"http://127.0.0.1:{local.port_of('admin')}/status",
                         headers={"Authorization": f"Bearer {token}"}, timeout=timeout_s)
    response.raise_for_status()
    return response.json()


def status_line(status: dict[str, Any]) -> str:
    """One line of the desk's status: trading state, NAV, drawdown, positions, and the date of the snapshot."""
    portfolios = status.get("portfolios") or []
    if not portfolios:
        return f"state {status['state']} ({status['state_reason']}); no portfolio snapshot yet"
    held = sum(1 for p in portfolios for pos in p["positions"] if pos.get("quantity"))
    drawdown = max(p["drawdown"] for p in portfolios)
    as_of = max(p["ts"] for p in portfolios)
    return (f"state {status['state']}, NAV {status['nav']:,.2f}, drawdown {drawdown:.2%}, {held} positions "
            f"(snapshot of {utc_date(as_of).isoformat()})")


def ingest_log() -> Path:
    """The log of the local desk's ingest service (appended to by every start)."""
    return local.RUN_DIR / "logs" / f"{SOURCE.name}.log"


def log_size() -> int:
    """The ingest log's size now: give it to :func:`follow` before the replay starts, so that it reads that replay's
    records only (not an earlier one's, while the new process has not logged its start yet)."""
    path = ingest_log()
    return path.stat().st_size if path.exists() else 0


def follow(say: Callable[[str], None] = print, status: Callable[[], dict[str, Any]] = admin_status,
           poll_s: float = 0.5, timeout_s: float | None = None, log_from: int = 0) -> int:
    """Print the replay's progress until it finishes, then the desk's status (``status``); return 0, or 1 when the
    ingest process ended without finishing (the end of its log is printed) or ``timeout_s`` passed first. The ingest
    log is read from byte ``log_from`` on (:func:`log_size` before the replay started)."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    log_path = ingest_log()
    pid = local.pids().get(SOURCE.name)
    if pid is None:
        say(f"no replay to follow: no {SOURCE.name} process was started (`make up` starts one)")
        return 1
    shown = 0
    while True:
        ended = local.wait_ended(pid, 0.0)  # read before the log: a process that ended has written all of it
        text = _read_from(log_path, log_from)
        progress = [r for r in latest_run(text) if r.get("message") in (PROGRESS, FINISHED)]
        for record in progress[shown:]:
            if record["message"] == PROGRESS:
                say(f"  {record.get('through', '?')}  {record['records']:>10,} records replayed")
            else:
                say(f"replay finished: {record['records']:,} records")
        shown = len(progress)
        if progress and progress[-1]["message"] == FINISHED:
            break
        if ended:
            say(f"{SOURCE.name} (pid {pid}) ended before the replay finished; the end of {log_path}:\n{text[-3000:]}")
            return 1
        if deadline is not None and time.monotonic() > deadline:
            say(f"the replay did not finish within {timeout_s:g} s")
            return 1
        time.sleep(poll_s)
    say(status_line(status()))
    return 0
