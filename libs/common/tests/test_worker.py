"""The services' background worker process: lower priority, and it never outlives its service."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from quorum_common.runtime.worker import PARENT_WATCH_S, WORKER_NICENESS, worker_pool

SERVICE = """
import os, sys, time
from quorum_common.runtime.worker import worker_pool
pool = worker_pool("json")
print(pool.submit(os.getpid).result(timeout=60), flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, exited but not yet reaped by its new parent, does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def test_the_worker_runs_at_a_lower_priority_and_does_the_work() -> None:
    pool = worker_pool("json")
    try:
        pid = pool.submit(os.getpid).result(timeout=60)
        assert pid != os.getpid()
        assert os.getpriority(os.PRIO_PROCESS, pid) == os.getpriority(os.PRIO_PROCESS, 0) + WORKER_NICENESS
    finally:
        pool.shutdown(wait=True)
    assert not _alive(pid)


def test_a_worker_exits_when_its_service_is_killed_outright() -> None:
    service = subprocess.Popen([sys.executable, "-c", SERVICE], stdout=subprocess.PIPE, text=True)
    worker = 0
    try:
        assert service.stdout is not None
        worker = int(service.stdout.readline())
        assert _alive(worker)
        service.send_signal(signal.SIGKILL)
        service.wait(timeout=30)
        deadline = time.monotonic() + 10 * PARENT_WATCH_S + 5
        while _alive(worker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(worker), "the worker outlived its service"
    finally:
        service.kill()
        if worker and _alive(worker):
            os.kill(worker, signal.SIGKILL)
